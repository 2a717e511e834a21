"""Argument checks: one family of validators for the options of every layer.

Each check takes the *owner* (what the option belongs to: ``"synthetic"``, ``"encoder 'gru'"``,
``"GaussianNoise"``), the option's *name* and its *value*; it returns the value, normalised
(``int``, ``float``, ``bool``), or raises an :class:`~mmfactor.errors.InputError` of one
line, ``"<owner>: <name> must be <what>, got <value>"`` (``hint``, where given, follows
``<what>`` in parentheses: what the value means). Booleans are not numbers here (``True`` is
no width); NumPy integers and floats are.

Example:
    >>> check_int("mlp", "hidden", 64, minimum=1)
    64
    >>> check_float("GaussianNoise", "sigma", -1, minimum=0)
    Traceback (most recent call last):
    ...
    mmfactor.errors.InputError: GaussianNoise: sigma must be a number >= 0, got -1
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmfactor.errors import InputError

__all__ = [
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "check_int_list",
    "check_probability",
]


def _fail(owner: str, name: str, what: str, value: Any, hint: str = "") -> InputError:
    what += f" ({hint})" if hint else ""
    return InputError(f"{owner}: {name} must be {what}, got {value!r}")


def _number(x: float) -> str:
    """A bound as people write it: ``1``, ``0.5``, ``1e-06``."""
    return str(x) if isinstance(x, int) else f"{x:g}"


def _range(
    minimum: float | None,
    maximum: float | None,
    min_open: bool = False,
    max_open: bool = False,
) -> str:
    """``">= 1"``, ``"> 0"``, ``"<= 1"``, ``"in [0, 1)"`` or ``""`` (no bound)."""
    if minimum is not None and maximum is not None:
        left, right = "(" if min_open else "[", ")" if max_open else "]"
        return f"in {left}{_number(minimum)}, {_number(maximum)}{right}"
    if minimum is not None:
        return f"{'>' if min_open else '>='} {_number(minimum)}"
    if maximum is not None:
        return f"{'<' if max_open else '<='} {_number(maximum)}"
    return ""


def _within(
    value: float,
    minimum: float | None,
    maximum: float | None,
    min_open: bool,
    max_open: bool,
) -> bool:
    if minimum is not None and not (value > minimum if min_open else value >= minimum):
        return False
    return maximum is None or (value < maximum if max_open else value <= maximum)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_int(
    owner: str,
    name: str,
    value: Any,
    minimum: int | None = 0,
    maximum: int | None = None,
    *,
    hint: str = "",
) -> int:
    """``value`` as an ``int``, if it is an integer in ``[minimum, maximum]`` (``None``: no
    bound on that side)."""
    if not _is_int(value) or not _within(value, minimum, maximum, False, False):
        bound = _range(minimum, maximum)
        raise _fail(owner, name, f"an integer {bound}".rstrip(), value, hint)
    return int(value)


def check_int_list(owner: str, name: str, value: Any, minimum: int = 1) -> list[int]:
    """An integer or a list/tuple of integers ``>= minimum``, as a list (``64 -> [64]``)."""
    values = [value] if _is_int(value) else value
    if not isinstance(values, list | tuple):
        raise _fail(owner, name, "an integer or a list of integers", value)
    return [check_int(owner, name, v, minimum) for v in values]


def check_float(
    owner: str,
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    min_open: bool = False,
    max_open: bool = False,
    finite: bool = True,
    hint: str = "",
) -> float:
    """``value`` as a ``float``, if it is a number within the bounds: ``[minimum, maximum]``,
    ``min_open`` / ``max_open`` excluding the bound itself (``None``: no bound on that side).
    NaN never passes; infinity only with ``finite=False``."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok:
        x = float(value)
        ok = not math.isnan(x) and (math.isfinite(x) or not finite)
        ok = ok and _within(x, minimum, maximum, min_open, max_open)
    if not ok:
        bound = _range(minimum, maximum, min_open, max_open)
        what = f"a number {bound}" if bound else "a finite number" if finite else "a number"
        raise _fail(owner, name, what, value, hint)
    return float(value)


def check_probability(owner: str, name: str, value: Any, *, closed: bool = False) -> float:
    """A probability in ``[0, 1)`` (a dropout rate: 1 would drop everything), or in
    ``[0, 1]`` with ``closed=True``."""
    return check_float(owner, name, value, 0, 1, max_open=not closed)


def check_choice(
    owner: str, name: str, value: Any, choices: Mapping[str, Any] | Sequence[str]
) -> Any:
    """``value`` if it is one of ``choices``; for a mapping, what it maps ``value`` to."""
    if not isinstance(value, str) or value not in choices:
        raise _fail(owner, name, f"one of {', '.join(choices)}", value)
    return choices[value] if isinstance(choices, Mapping) else value


def check_bool(owner: str, name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (not ``0``/``1``, not a string)."""
    if not isinstance(value, bool):
        raise _fail(owner, name, "true or false", value)
    return value
