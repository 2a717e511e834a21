"""Training checkpoints that survive damage.

A run directory keeps two: ``checkpoints/last.ckpt`` and, beside it,
``checkpoints/previous.ckpt``, the one written before it. Writing a new last checkpoint
first writes it to a temporary file, then moves the old last to ``previous.ckpt`` and the
new file into place, each step an atomic rename, so a killed process always leaves a
complete checkpoint behind. Resuming (:func:`resume_checkpoint`) checks the last one (the
zip archive's checksums, ``torch.load(weights_only=True)``, the keys of a training state)
and falls back to the previous one with a warning; a run whose checkpoints are all
unreadable is an :class:`~mmfactor.errors.InputError`, and :func:`start_over` discards them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from mmfactor.errors import InputError
from mmfactor.io import load_torch
from mmfactor.lock import launching_process

LAST = "last.ckpt"
PREVIOUS = "previous.ckpt"
#: What every Lightning training checkpoint holds.
CHECKPOINT_KEYS = ("state_dict", "optimizer_states", "loops", "callbacks", "epoch", "global_step")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written atomically, keeping the one they replace as ``previous.ckpt``, and
    read back with ``torch.load(weights_only=True)``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            # No fsync, which would cost more per epoch than a small model's training step
            # (power loss may lose the last epochs; a killed process loses nothing written).
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
            if path.exists():
                _keep_as_previous(path)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_torch(path, map_location=map_location or "cpu")


def _keep_as_previous(path: Path) -> None:
    """Make ``path`` the previous checkpoint. A hard link keeps ``path`` in place until the
    new file replaces it; without hard links it is renamed (a kill before the new file is in
    place then leaves only the previous one, which resuming takes)."""
    previous = path.with_name(PREVIOUS)
    staged = path.with_name(f".{PREVIOUS}.{os.getpid()}")
    staged.unlink(missing_ok=True)
    try:
        os.link(path, staged)
    except OSError:
        os.replace(path, previous)
        return
    os.replace(staged, previous)


def checkpoint_problem(path: str | Path) -> str | None:
    """Why the training checkpoint at ``path`` cannot be resumed from (a few words), or
    ``None`` if it can: a torch zip archive whose members match their checksums (a bit flip
    in the tensor data is caught here; ``torch.load`` does not check them), that loads with
    ``weights_only=True`` and holds a training state's keys."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except zipfile.BadZipFile:
        return "truncated, or not a checkpoint"
    except Exception as exc:  # a probe: any failure to read it means it cannot be resumed
        return f"unreadable archive, {type(exc).__name__}: {_first_line(exc)}"
    if damaged is not None:
        return f"damaged, checksum mismatch in {damaged}"
    try:
        # mmap: the structure is unpickled, the tensors' bytes are not read again
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        return f"cannot be loaded, {type(exc).__name__}: {_first_line(exc)}"
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        return f"not a training checkpoint, no {', '.join(missing)}"
    return None


def resume_checkpoint(last: Path) -> Path | None:
    """The checkpoint to resume from: ``last`` (``checkpoints/last.ckpt``) if it can be read,
    else the previous one beside it (with a warning; an unreadable ``last`` is renamed to
    ``last.ckpt.unreadable``, so that the next checkpoint does not make it the previous one),
    else ``None`` where there is no checkpoint at all.

    Raises:
        InputError: checkpoints exist and none can be read; names them and why.
    """
    previous = last.with_name(PREVIOUS)
    problems: dict[Path, str] = {}
    for path in (last, previous):
        why = checkpoint_problem(path) if path.exists() else "missing"
        if why is None:
            if path != last and launching_process():  # one warning per run, not per process
                _fall_back(last, problems[last], path)
            return path
        problems[path] = why
    if not last.exists() and not previous.exists():
        return None
    raise InputError(
        f"{last}: no readable checkpoint to resume from "
        f"({'; '.join(f'{p.name}: {why}' for p, why in problems.items())}); "
        "fit again with restart=True (the CLI's --restart) to start over, discarding them"
    )


def _fall_back(last: Path, problem: str, previous: Path) -> None:
    """Warn that training resumes from ``previous``, setting a damaged ``last`` aside."""
    kept = ""
    if last.exists():
        os.replace(last, last.with_name(f"{LAST}.unreadable"))
        kept = f" (the damaged one is kept as {LAST}.unreadable)"
    warnings.warn(
        f"{last}: {problem}; resuming from {previous.name}, the checkpoint before it{kept}",
        UserWarning,
        stacklevel=3,
    )


def start_over(run_dir: Path) -> None:
    """Discard what training left in ``run_dir``: checkpoints, logs, weights and metrics (the
    config stays)."""
    for name in ("checkpoints", "logs"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for name in ("model.pt", "metrics.json"):
        (run_dir / name).unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
