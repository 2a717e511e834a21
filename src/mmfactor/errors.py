"""Errors that reach the user.

:class:`InputError` is bad usage or bad input (an unknown name, a malformed file, a config key
that does not exist). The CLI turns it into a one-line message and exit code 2; everything
else is an internal error (exit code 1).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input or usage. The message names the file, key or option at fault."""


def unknown_name(kind: str, name: str, known: list[str]) -> InputError:
    """An :class:`InputError` for a registry look-up that failed, listing what exists."""
    return InputError(f"unknown {kind} {name!r}; available: {', '.join(sorted(known))}")
