"""A sandbox for fuzzing the file loaders: a child process loads one file at a time under a
memory cap and the parent waits for its answer under a time cap, so a hang, a crash or a
huge allocation becomes a reported outcome instead of a stuck or killed test run.

The child (``python -m tests.fuzz.sandbox``) imports mmfactor once, then caps its address
space (``RLIMIT_AS``) at what the imports took plus :data:`MEMORY_BUDGET`: a loader that tries
to allocate more (a header claiming 10**12 rows taken at its word) gets a ``MemoryError``,
which is a failure like any exception other than ``InputError``. (``safe_pickle`` turns the
``MemoryError`` of a pickle's length field larger than memory into an ``InputError`` on purpose:
Python allocates such a field before it reads it, and never touches it; what would fill
memory is refused before it runs, which the regression tests check by message.) Jobs and
answers travel as
length-prefixed pickles over the child's stdin and a private copy of its stdout (the loaders'
own output goes to stderr, kept in a log file for crash reports).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parents[2]
#: Address space a case may add to what the child's imports take. A loader reading the small
#: files of the corpus needs a few MiB; asking for more than this is a memory blow-up.
MEMORY_BUDGET = int(os.environ.get("MMFACTOR_FUZZ_MEMORY_MB", "1024")) * 2**20
#: Seconds a case may take (cases take well under a second; the margin is for a loaded CI box).
TIMEOUT = float(os.environ.get("MMFACTOR_FUZZ_TIMEOUT", "30"))
_LEN = struct.Struct("<Q")


@dataclass(frozen=True)
class Outcome:
    """``kind``: ``ok``, ``input_error`` (``detail`` is the message), ``error`` (another
    exception; ``detail`` its traceback), ``hang`` or ``crash``."""

    kind: str
    detail: str


# ----------------------------------------------------------------------------- the child


def _send(fh: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj)
    fh.write(_LEN.pack(len(data)) + data)
    fh.flush()


def _recv_exact(fh: BinaryIO, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise EOFError
    return data


def _call(name: str, kwargs: dict[str, Any]) -> str:
    """Run one job: load, then use the result as training would (its summary and a batch)."""
    import mmfactor as mf
    from mmfactor.data.batching import make_loader
    from mmfactor.data.safe_pickle import load_pickle

    if name == "pickle":
        return type(load_pickle(**kwargs)).__name__
    if name == "audio":
        from mmfactor.data.audio import read_audio

        signal, rate = read_audio(**kwargs)
        return f"{len(signal)} samples at {rate} Hz"
    data = mf.datasets.load(name, **kwargs)
    data.summary()
    train = data.indices("train")[:8]
    if len(train):
        next(iter(make_loader(data, train, 8)))
    return f"{len(data)} samples"


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _serve() -> None:
    import resource
    import warnings

    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a loader prints goes to the log, not into the answers
    warnings.simplefilter("ignore")
    import soundfile  # noqa: F401  (libsndfile loads before the cap)

    import mmfactor as mf  # noqa: F401  (everything a job needs is imported before the cap)
    import mmfactor.data.array_files
    import mmfactor.data.audio
    import mmfactor.data.batching
    import mmfactor.data.mmsa
    import mmfactor.data.multibench  # noqa: F401
    from mmfactor.errors import InputError

    cap = _vm_size() + MEMORY_BUDGET
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    _send(answers, ("ready", ""))
    jobs = sys.stdin.buffer
    while True:
        try:
            (size,) = _LEN.unpack(_recv_exact(jobs, _LEN.size))
            name, kwargs = pickle.loads(_recv_exact(jobs, size))
        except EOFError:
            return
        try:
            answer = ("ok", _call(name, kwargs))
        except InputError as exc:
            answer = ("input_error", str(exc))
        except BaseException:  # noqa: BLE001  (every other exception is the finding)
            answer = ("error", traceback.format_exc())
        _send(answers, answer)


# ----------------------------------------------------------------------------- the parent


class Sandbox:
    """The parent's handle on the child; a hang or a crash starts a fresh child for the
    next case. ``log_dir`` receives the child's stderr (``sandbox-<k>.log``)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0
        self.log: Path | None = None
        #: (test, outcome kind) -> cases, for the summary at the end of the session.
        self.counts: Counter[tuple[str, str]] = Counter()

    def _start(self) -> None:
        self.started += 1
        self.log = self.log_dir / f"sandbox-{self.started}.log"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            # One thread: no thread pools (and their stacks) inside the memory cap.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.fuzz.sandbox"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
            )
        kind, _ = self._answer(timeout=300)
        if kind != "ready":
            raise RuntimeError(f"the fuzz sandbox did not start: {kind}; see {self.log}")

    def _answer(self, timeout: float) -> tuple[str, str]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = b""
        need = _LEN.size
        while len(buf) < need:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return ("hang", f"no answer within {timeout:.0f} s")
            chunk = os.read(fd, need - len(buf))
            if not chunk:
                return ("crash", self._death())
            buf += chunk
            if len(buf) == _LEN.size and need == _LEN.size:
                need += _LEN.unpack(buf)[0]
        return pickle.loads(buf[_LEN.size :])  # type: ignore[no-any-return]

    def _death(self) -> str:
        assert self.proc is not None
        code = self.proc.wait()
        what = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        tail = self.log.read_text(errors="replace")[-2000:] if self.log else ""
        return f"the loader process died ({what}); its stderr ends:\n{tail}"

    def run(self, name: str, **kwargs: Any) -> Outcome:
        """Run ``mf.datasets.load(name, **kwargs)`` (``load_pickle`` for ``pickle``,
        ``read_audio`` for ``audio``) and use the result: its summary and one batch of the
        train split."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        data = pickle.dumps((name, kwargs))
        try:
            self.proc.stdin.write(_LEN.pack(len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            return Outcome("crash", self._death())
        kind, detail = self._answer(TIMEOUT)
        if kind in ("hang", "crash"):
            self.close()
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split()[0]
        self.counts[test.split("[")[0], kind] += 1
        return Outcome(kind, detail)

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for fh in (self.proc.stdin, self.proc.stdout):
                if fh is not None:
                    fh.close()
            self.proc = None


def check(outcome: Outcome, *files: Path) -> None:
    """A correct load, or an InputError whose message is one line naming one of ``files``."""
    if outcome.kind == "ok":
        return
    if outcome.kind != "input_error":
        raise AssertionError(f"{outcome.kind}: {outcome.detail}")
    message = outcome.detail
    assert len(message.splitlines()) == 1, f"a message of several lines: {message!r}"
    assert any(str(f) in message for f in files), f"the message names no file: {message!r}"


if __name__ == "__main__":
    _serve()
