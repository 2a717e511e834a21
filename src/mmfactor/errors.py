"""Errors that reach the user.

:class:`InputError` is bad usage or bad input (an unknown name, a malformed file, a config key
that does not exist). The CLI turns it into a one-line message and exit code 2; everything
else is an internal error (exit code 1).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input or usage. The message names the file, key or option at fault.

    ``argument`` is the name of the Python argument at fault (``missing``, ``seeds``), set
    where a function's argument was bad, so that a front end can name its own spelling of it:
    the CLI prints the flag (``--missing``) where the library's message names the argument.
    A message with an ``argument`` starts with that name.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


def unknown_name(kind: str, name: str, known: list[str]) -> InputError:
    """An :class:`InputError` for a registry look-up that failed, listing what exists."""
    return InputError(f"unknown {kind} {name!r}; available: {', '.join(sorted(known))}")
