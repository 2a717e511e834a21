"""One writer per directory: :func:`lock_directory` holds ``DIR/.lock`` while ``fit`` or
``bench`` writes into ``DIR``.

The lock file is created exclusively and holds JSON naming its holder (``pid``, ``host``,
``since``, the command and a random ``token``); it is written in full before it appears
(linked into place from a temporary file), so a reader never sees half of it. A second
process finds it and fails with :class:`LockHeld` naming the holder. A lock whose holder
has died on this host (no such process, a zombie, or the pid now belongs to a process
started after the lock was taken) is taken over with a warning; a lock held from another
host is respected, since its process cannot be checked from here. The lock goes when its
holder leaves the ``with`` block, normally or by an exception; a killed process leaves it
behind, for the next run on the same host to take over.

Under data parallelism every process runs the same command, and only the launching one
(rank 0 by the launchers' environment variables) takes the lock; the others work under it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmfactor.errors import InputError

LOCK_NAME = ".lock"

# The variables through which launchers (Lightning's, torchrun, SLURM, LSF) give a process
# its rank; a process where any of them is set and not 0 is not the launching one.
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")

_held: set[str] = set()  # tokens of the locks this process holds


class LockHeld(InputError):
    """The directory is locked by another live process (or by this one, in another
    ``with`` block). ``holder`` is the lock file's content."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def launching_process() -> bool:
    """Whether this process is the one that was launched, not a data-parallel worker that a
    launcher started beside it (by the rank variables of the environment)."""
    return all(os.environ.get(name, "0") == "0" for name in _RANK_VARIABLES)


@contextlib.contextmanager
def lock_directory(directory: str | Path) -> Iterator[Path]:
    """Hold ``directory/.lock`` for the ``with`` block; yields the lock file's path. A no-op in
    a data-parallel worker (:func:`launching_process`).

    Raises:
        LockHeld: another live process holds the lock (an :class:`InputError` naming it).
    """
    path = Path(directory) / LOCK_NAME
    if not launching_process():
        yield path
        return
    token = _acquire(path)
    try:
        yield path
    finally:
        _release(path, token)


def _acquire(path: Path) -> str:
    """Create the lock file exclusively, taking over a stale one; its token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    now = time.time()
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
        "time": now,
        "command": " ".join(sys.argv),
        "token": token,
    }
    for _ in range(10):  # each turn either takes the lock or removes a stale one
        if _create(path, holder):
            _held.add(token)
            return token
        current = _read(path)
        if current is None:  # released or moved between our attempt and the read
            continue
        reason = _stale(current)
        if reason is None:
            raise LockHeld(_describe(path, current), current)
        if _remove_stale(path, current):
            warnings.warn(
                f"{path}: taking over the lock of process {current.get('pid')} on "
                f"{current.get('host')} (since {current.get('since')}): {reason}",
                UserWarning,
                stacklevel=4,
            )
    raise InputError(f"{path}: could not take the lock (other processes keep taking it)")


def _create(path: Path, holder: dict[str, Any]) -> bool:
    """Put a lock file holding ``holder`` at ``path`` unless one is there; whether it did."""
    payload = (json.dumps(holder, indent=2, allow_nan=False) + "\n").encode()
    tmp = path.with_name(f"{path.name}.{holder['token']}.tmp")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # atomic, complete, and fails if the lock exists
        return True
    except FileExistsError:
        return False
    except OSError as exc:  # a file system without hard links
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        return _create_exclusive(path, payload)
    finally:
        tmp.unlink(missing_ok=True)


def _create_exclusive(path: Path, payload: bytes) -> bool:
    """The fallback of :func:`_create`: ``O_CREAT | O_EXCL``, then the content (a reader in
    between sees an empty lock and treats it as held)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _read(path: Path) -> dict[str, Any] | None:
    """The lock file's content; ``None`` if there is none; ``{}`` if it cannot be parsed."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _stale(holder: dict[str, Any]) -> str | None:
    """Why the lock of ``holder`` is stale (its process is gone), or ``None`` if it may be
    held: by a live process, from another host, or unreadable (being written)."""
    pid, host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return None
    if pid == os.getpid():
        # This process holds it, or an earlier process had our pid (a restarted container).
        return None if holder.get("token") in _held else "an earlier process with this pid"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "that process is no longer running"
    except PermissionError:
        pass  # it exists, under another user
    state = _proc_stat(pid)
    if state is not None:
        if state[0] == "Z":
            return "that process has exited"
        since = holder.get("time")
        if isinstance(since, int | float) and state[1] > since + 1.0:
            return "its pid now belongs to a process started later"
    return None


def _proc_stat(pid: int) -> tuple[str, float] | None:
    """State letter and start time (seconds since the epoch) of process ``pid`` from
    ``/proc`` (Linux); ``None`` where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (command) "
    try:
        return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError, OSError):
        return None


def _remove_stale(path: Path, stale: dict[str, Any]) -> bool:
    """Remove the lock file if it still is ``stale``; whether this process removed it.
    Moved aside first, so that of two processes taking over only one succeeds, and a lock
    taken afresh in the meantime is put back."""
    aside = path.with_name(f"{path.name}.stale-{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    if _read(aside) == stale:
        aside.unlink(missing_ok=True)
        return True
    with contextlib.suppress(OSError):  # not the lock we judged: give it back
        os.link(aside, path)
    aside.unlink(missing_ok=True)
    return False


def _release(path: Path, token: str) -> None:
    """Remove the lock file if it is still ours."""
    _held.discard(token)
    current = _read(path)
    if current is not None and current.get("token") == token:
        path.unlink(missing_ok=True)


def _describe(path: Path, holder: dict[str, Any]) -> str:
    """The one-line message of a held lock."""
    if not holder:
        return (
            f"{path.parent}: in use (lock file {path} is being written or unreadable); if no "
            "process uses the directory, remove the lock file"
        )
    where = "" if holder.get("host") == socket.gethostname() else ", on another host"
    return (
        f"{path.parent}: in use by process {holder.get('pid')} on {holder.get('host')} since "
        f"{holder.get('since')} (lock file {path}{where}); wait for it to finish or use "
        "another directory" + ("; remove the lock file if that process is gone" if where else "")
    )
