"""One writer per directory (mmfactor.lock): a held lock names its holder, a dead holder's lock
on this host is taken over, another host's is respected, and `fit` takes it for its run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from lightning.pytorch.callbacks import Callback
from tests.commands import run_cli

import mmfactor as mf
from mmfactor.errors import InputError
from mmfactor.lock import LockHeld, launching_process, lock_directory


def write_lock(directory, **holder):
    """A lock file as another process would have left it."""
    directory.mkdir(parents=True, exist_ok=True)
    content = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": "2025-01-01 00:00:00",
        "time": time.time(),
        "command": "mmfactor fit",
        "token": "someone-else",
        **holder,
    }
    (directory / ".lock").write_text(json.dumps(content))
    return content


@pytest.fixture
def sleeper():
    """A live process of this host that is not this one; reaped afterwards."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_file_names_the_holder_and_goes_on_exit(tmp_path):
    with lock_directory(tmp_path) as path:
        holder = json.loads(path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert {"since", "time", "command", "token"} <= set(holder)
        assert [p.name for p in tmp_path.iterdir()] == [".lock"]  # no temporary file left
    assert not path.exists()


def test_second_holder_in_this_process_is_refused(tmp_path):
    with lock_directory(tmp_path):
        with pytest.raises(LockHeld, match=f"in use by process {os.getpid()} on "):
            with lock_directory(tmp_path):
                pass
        assert (tmp_path / ".lock").exists()  # the refused attempt left the lock alone
    assert not (tmp_path / ".lock").exists()


def test_live_holder_is_named_and_its_lock_kept(tmp_path, sleeper):
    before = write_lock(tmp_path, pid=sleeper.pid)
    with pytest.raises(LockHeld) as err:
        with lock_directory(tmp_path):
            pass
    message = str(err.value)
    assert isinstance(err.value, InputError) and "\n" not in message
    assert f"process {sleeper.pid} on {socket.gethostname()} since 2025-01-01 00:00:00" in message
    assert json.loads((tmp_path / ".lock").read_text()) == before


def test_dead_holder_on_this_host_is_taken_over(tmp_path):
    pid = dead_pid()
    write_lock(tmp_path, pid=pid)
    with pytest.warns(UserWarning, match=f"taking over the lock of process {pid} .*no longer"):
        with lock_directory(tmp_path) as path:
            assert json.loads(path.read_text())["pid"] == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left beside it


def test_pid_reused_by_a_later_process_is_stale(tmp_path, sleeper):
    """The pid lives, but its process started after the lock was taken (pid reuse)."""
    if not os.path.exists(f"/proc/{sleeper.pid}/stat"):
        pytest.skip("needs /proc (Linux) to read process start times")
    write_lock(tmp_path, pid=sleeper.pid, time=time.time() - 3600)
    with pytest.warns(UserWarning, match="pid now belongs to a process started later"):
        with lock_directory(tmp_path):
            pass


def test_our_own_pid_from_an_earlier_process_is_stale(tmp_path):
    """A restarted container can give the new process the pid of the one that died."""
    write_lock(tmp_path, pid=os.getpid(), token="from-before")
    with pytest.warns(UserWarning, match="an earlier process with this pid"):
        with lock_directory(tmp_path):
            pass


def test_other_hosts_lock_is_respected(tmp_path):
    write_lock(tmp_path, pid=dead_pid(), host="elsewhere.example")
    with pytest.raises(LockHeld, match="on elsewhere.example .*on another host.*remove the lock"):
        with lock_directory(tmp_path):
            pass


def test_unreadable_lock_is_held(tmp_path):
    tmp_path.joinpath(".lock").write_text("")  # being written, or damaged: not ours to take
    with pytest.raises(LockHeld, match="being written or unreadable"):
        with lock_directory(tmp_path):
            pass


def test_released_on_an_exception(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with lock_directory(tmp_path):
            raise RuntimeError("boom")
    assert not (tmp_path / ".lock").exists()


def test_data_parallel_workers_take_no_lock(tmp_path, monkeypatch):
    assert launching_process()
    monkeypatch.setenv("LOCAL_RANK", "1")  # what Lightning's launcher gives a worker
    assert not launching_process()
    with lock_directory(tmp_path):
        assert not (tmp_path / ".lock").exists()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")  # the first process of the second machine
    assert not launching_process()


class Probe(Callback):
    """Reads the run directory's lock during training."""

    def __init__(self, out):
        self.out, self.seen = out, []

    def on_train_epoch_end(self, trainer, pl_module):
        self.seen.append(json.loads((self.out / ".lock").read_text())["pid"])
        if trainer.current_epoch == 1:
            raise RuntimeError("simulated crash")


def test_fit_holds_the_lock_and_releases_it_when_it_raises(toy, tmp_path):
    model = mf.methods.build("clip", toy.modalities, embed_dim=4)
    probe = Probe(tmp_path)
    with pytest.raises(RuntimeError, match="simulated crash"):
        mf.fit(model, toy, max_epochs=3, batch_size=64, out=tmp_path, progress=False,
               callbacks=[probe])  # fmt: skip
    assert probe.seen == [os.getpid(), os.getpid()]
    assert not (tmp_path / ".lock").exists()
    run = mf.fit(model, toy, max_epochs=3, batch_size=64, out=tmp_path, progress=False)
    assert run.epochs == 3 and not (tmp_path / ".lock").exists()


FIT = [
    *("fit", "--method", "cross-self", "--data", "synthetic", "--set", "data.n=600"),
    *("--set", "method.embed_dim=8", "--set", "train.patience=0", "--epochs"),
]


def test_second_fit_on_the_same_out_exits_2_naming_the_first(tmp_path):
    """Two real `mmfactor fit` on one --out: the second stops at once, naming the first; the
    lock the first leaves when it is killed is taken over by the next process."""
    out = tmp_path / "run"
    first = subprocess.Popen(  # trains far longer than the test runs
        [sys.executable, "-m", "mmfactor.cli", *FIT, "100000", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not (out / ".lock").exists() and time.monotonic() < deadline:
            assert first.poll() is None, "the first fit failed"
            time.sleep(0.05)
        second = run_cli(*FIT, "100000", "--out", str(out))
        assert first.poll() is None  # still training: the refusal was a real conflict
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2, second.stderr[-2000:]
    host = socket.gethostname()
    assert second.stderr.startswith(f"mmfactor: error: {out}: in use by process {first.pid} on ")
    assert f" on {host} since " in second.stderr and len(second.stderr.splitlines()) == 1
    assert [p.name for p in (out / "logs").iterdir()] == ["attempt0"]  # one writer only
    with pytest.warns(UserWarning, match=f"lock of process {first.pid} .*no longer running"):
        with lock_directory(out):
            pass


def test_fit_takes_over_a_dead_processes_lock(tmp_path):
    out = tmp_path / "run"
    pid = dead_pid()
    write_lock(out, pid=pid)
    proc = run_cli(*FIT, "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"mmfactor: warning: {out / '.lock'}: taking over the lock of process {pid}" in (
        proc.stderr
    )
    assert not (out / ".lock").exists()


BENCH = [
    *("bench", "quick", "--methods", "clip", "--datasets", "synthetic"),
    *("--set", "data.n=600", "--set", "train.max_epochs=1"),
]
# How long training took (and, for a finished training resumed, why there is no speed).
TIMES = ("train_seconds", "samples_per_second")


def test_bench_refuses_a_held_directory(tmp_path, sleeper):
    from mmfactor.bench import get_suite, run_bench

    write_lock(tmp_path, pid=sleeper.pid)
    with pytest.raises(LockHeld, match=f"in use by process {sleeper.pid} "):
        run_bench(get_suite("quick"), tmp_path, methods=["clip"], datasets=["synthetic"])
    assert [p.name for p in tmp_path.iterdir()] == [".lock"]  # nothing written


def test_bench_resumes_past_a_half_written_last_line(tmp_path):
    """A bench killed while appending the records of its last run: the torn line is skipped
    with a warning, cut off on resume, and that run's records are appended whole again."""
    from mmfactor.bench import read_records
    from mmfactor.cli import main

    out = tmp_path / "bench"
    assert main([*BENCH, "--out", str(out)]) == 0
    results = out / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    raw = [line for line in lines if '"method": "raw"' in line]
    assert 0 < len(raw) < len(lines)  # raw's records, then clip's
    torn = lines[len(raw)][:100]  # clip's append cut short in its first record
    results.write_text("".join(raw) + torn)

    with pytest.warns(UserWarning, match=rf"line {len(raw) + 1} is half-written"):
        assert len(read_records(results)) == len(raw)
    with pytest.warns(UserWarning, match="dropped its half-written last line") as caught:
        assert main([*BENCH, "--out", str(out)]) == 0
    assert not [w for w in caught if "is not JSON" in str(w.message)]
    again = results.read_text().splitlines(keepends=True)
    assert again[: len(raw)] == raw  # complete lines are never rewritten
    assert len(again) == len(lines) and not (out / ".lock").exists()
    for before, after in zip(lines, again, strict=True):
        b, a = json.loads(before), json.loads(after)
        assert {k: v for k, v in b.items() if not k.startswith(TIMES)} == {
            k: v for k, v in a.items() if not k.startswith(TIMES)
        }
