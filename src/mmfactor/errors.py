"""Errors that reach the user.

:class:`InputError` is bad usage or bad input (an unknown name, a malformed file, a config key
that does not exist). The CLI turns it into a one-line message and exit code 2; everything
else is an internal error (exit code 1). :class:`DivergedError` is a training that diverged
(exit code 3).
"""

from __future__ import annotations

from typing import Any


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


class DivergedError(RuntimeError):
    """Training stopped because a value that must be finite was not: a loss part, the
    gradient norm of the main step, the estimator loss or a validation value
    (``train.on_nonfinite``). The run directory keeps the last finite checkpoint and the best
    (or last finite) weights, and its ``metrics.json`` says ``"status": "diverged"``. The CLI
    prints the message as one line and exits with code 3.

    ``epoch`` and ``step`` count from 0 (``step`` within the epoch); ``part`` names the value
    (``task``, ``loss``, ``grad_norm``, ``estimator``, ``valid/loss``, ...) and ``value`` what it
    was (``inf``, ``-inf`` or ``nan``). ``run`` is the :class:`mmfactor.train.Run` of the
    diverged training, set by :func:`mmfactor.train.fit` (its model holds those weights).
    """

    def __init__(self, epoch: int, step: int, part: str, value: str, reason: str) -> None:
        super().__init__(f"diverged at epoch {epoch} step {step}: {reason}")
        self.epoch, self.step, self.part, self.value = epoch, step, part, value
        self.run: Any = None

    def as_dict(self) -> dict[str, Any]:
        """Where and what: ``{"epoch", "step", "part", "value"}`` (``metrics.json``)."""
        return {"epoch": self.epoch, "step": self.step, "part": self.part, "value": self.value}
