"""The records of a bench, ``results.jsonl``: one strict-JSON object per line, appended as each
run finishes and never rewritten, so that a killed bench loses at most the line it was writing
(dropped, with a warning, when it resumes)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmfactor.io import dumps_json, from_json_safe

TRAINING = "training"  # the protocol of the record of a diverged training, not evaluated


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records of a ``results.jsonl``. A last line without its newline (a write cut short by
    a killed process) is skipped with a warning, as is a line that is not JSON. A non-finite
    value, stored as ``null`` with its reason, is the float again."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")  # a torn tail may cut a char
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if number == len(lines) and not text.endswith("\n"):
            warnings.warn(
                f"{path}: line {number} is half-written (a bench killed while writing it); skipped",
                UserWarning,
                stacklevel=2,
            )
            break
        if not line.strip():
            continue
        try:
            records.append(from_json_safe(json.loads(line)))
        except json.JSONDecodeError as exc:
            warnings.warn(f"{path}: line {number} is not JSON ({exc}); skipped", stacklevel=2)
    return records


def cut_torn_tail(path: Path) -> None:
    """Drop a half-written last line of ``path`` (no newline at its end: an append cut short
    by a killed process), with a warning, so that the next append starts a line of its own.
    Complete lines are never rewritten."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if not data or data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
    warnings.warn(
        f"{path}: dropped its half-written last line (a bench killed while writing it: "
        f"{len(data) - keep} bytes); that run is done again",
        UserWarning,
        stacklevel=3,
    )


def append_records(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Append in one write and flush to disk; strict JSON (:func:`mmfactor.io.dumps_json`)."""
    payload = "".join(dumps_json(r, sort_keys=True) + "\n" for r in records).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)


def not_evaluated(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of diverged trainings that no later (forced) evaluation replaced."""

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["dataset"], r.get("bench_target"), r["method"], r["seed"])

    evaluated = {key(r) for r in records if r.get("protocol") != TRAINING}
    return [r for r in records if r.get("protocol") == TRAINING and key(r) not in evaluated]
