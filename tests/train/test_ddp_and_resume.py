"""Data-parallel training (2 gloo processes equal one) and killed runs that resume to the
weights of uninterrupted ones, through the command line in fresh processes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Every method, 2 gloo processes against one. What the cases switch off, and why:
# - Adam (main and estimator optimisers): it divides each gradient by its own running scale,
#   which turns rounding differences in near-zero gradients into lr-sized steps (measured
#   with Adam: max |dw| 3e-4 after one epoch for mird, 2e-7 with SGD; factorcl-sup's NCE-CLUB
#   critics 9e-3 with Adam, 3e-8 with SGD). Equal in expectation, not bit for bit.
# - dropout: each process draws masks for its own rows (augmentations, by contrast, are cut
#   from one draw for the global batch and are left on: cross-self, factorcl-ssl).
# What they exercise: batch-level terms on gathered rows (dcca, mucmm correlations and batch
# norm, misa CMD and orthogonality, the contrastive negatives), estimator networks (mird's
# CLUB, factorcl's NCE-CLUB critics, their gradients averaged by the engine), semi-supervised
# batches (mird: each process takes its share of the labeled and of the unlabeled rows).
SGD = ["train.optimizer=sgd", "train.lr=0.01"]
ESTIMATOR_SGD = [*SGD, "train.estimator_optimizer=sgd"]
DDP_CASES = {
    "cca": [],  # closed form, no training to distribute: see the test below
    "clip": [],
    "cross-self": SGD,
    # float32 rounding in the head's batch norm (64 rows) grows over the steps at lr 0.01
    # (weights 2.8e-4 apart after 2 epochs; 1.8e-6 at lr 0.001); one step in float64 is exact
    # (tests/test_distributed.py::test_comm_step_of_two_processes_equals_one).
    "comm": ["train.optimizer=sgd", "train.lr=0.001"],
    "infmasking": ["train.optimizer=sgd", "train.lr=0.001"],  # as comm
    "supcon": SGD,
    "supervised": [*SGD, "method.dropout=0.0"],
    "dcca": SGD,
    "mucmm": SGD,
    "misa": [*SGD, "method.dropout=0.0", "method.fusion_dropout=0.0"],
    "mfm": [*SGD, "method.dropout=0.0"],
    "mird": [
        "data.n_unlabeled=300",
        "train.unlabeled_ratio=2",
        "method.dropout=0.0",
        *ESTIMATOR_SGD,
    ],
    "factorcl-sup": ESTIMATOR_SGD,
    "factorcl-ssl": ESTIMATOR_SGD,
}


@pytest.fixture(scope="module")
def ddp_fits(tmp_path_factory) -> dict[int, Path]:
    """Every case fitted on synthetic (n = 600, global batch 64, 2 epochs) on 2 gloo
    processes and on one: two launches of ``ddp_fits.py`` (Python, torch and Lightning start
    once per device count, about 10 s each, not once per case). Runs in ``{devices: dir}``."""
    root = tmp_path_factory.mktemp("ddp")
    cases = root / "cases.json"
    cases.write_text(json.dumps(DDP_CASES))
    outs = {}
    for devices in (2, 1):
        outs[devices] = root / f"devices{devices}"
        script = Path(__file__).with_name("ddp_fits.py")
        command = [sys.executable, str(script), str(outs[devices]), str(devices), str(cases)]
        proc = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return outs


def fitted(outs: dict[int, Path], method: str, devices: int) -> tuple[int, dict]:
    """Epochs trained and final weights of ``method``'s run on ``devices`` processes."""
    epochs = json.loads((outs[devices] / "epochs.json").read_text())[method]
    return epochs, torch.load(outs[devices] / method / "model.pt", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in DDP_CASES if m != "cca"])
def test_ddp_two_cpu_processes_match_one_process(method, ddp_fits):
    """Global batch 64 split over 2 gloo processes, negatives gathered, gradients averaged:
    the weights after 2 epochs equal those of one process with batch 64."""
    (epochs2, two), (epochs1, one) = (fitted(ddp_fits, method, d) for d in (2, 1))
    assert epochs2 == epochs1 == 2
    diff = max(float((two[k] - one[k]).abs().max()) for k in one)
    assert diff < 1e-4


@pytest.mark.slow
def test_closed_form_cca_under_ddp_settings_is_the_one_process_fit(ddp_fits):
    """cca has nothing to distribute: asked for 2 processes, it is fitted in closed form in
    one and gives the one-process model (0 epochs of gradient training)."""
    (epochs2, two), (epochs1, one) = (fitted(ddp_fits, "cca", d) for d in (2, 1))
    assert epochs2 == epochs1 == 0
    # exact: the same closed-form computation on the same train split, in one process each
    assert all(torch.equal(two[k], one[k]) for k in one)


def assert_killed_run_resumes(tmp_path, fit_args: list[str]) -> None:
    """SIGKILL a real `mmfactor fit` (and any worker processes: it runs in a session of its
    own, as a Ctrl-C or a scheduler's kill would take the job) once its first checkpoint
    exists; the same command then finishes the run, with the weights of an uninterrupted
    one, bit for bit."""
    import os
    import signal
    import time

    def command(out):
        return [sys.executable, "-m", "mmfactor.cli", "fit", *fit_args, "--out", str(out)]

    killed = subprocess.Popen(
        command(tmp_path / "run"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.01)
    os.killpg(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL  # it was still running: a real interruption
    assert not (tmp_path / "run" / "model.pt").exists()

    for out in (tmp_path / "run", tmp_path / "ref"):
        proc = subprocess.run(command(out), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    resumed = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    reference = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)
    # Exact (bit-exact resume): both runs are fresh processes with the same config, devices
    # and threads; the resumed one restarts from an end-of-epoch state and redoes the same
    # batches (same shapes, steps reseeded from (seed, epoch, step)) as the reference.
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
    assert len(list((tmp_path / "run" / "logs").glob("attempt*"))) == 2


RESUME_ARGS = [
    *("--data", "synthetic", "--set", "data.n=600", "--set", "train.checkpoint_interval=0"),
    *("--set", "train.patience=0", "--set", "train.batch_size=64"),
]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    assert_killed_run_resumes(
        tmp_path,
        ["--method", "cross-self", *RESUME_ARGS, "--set", "method.embed_dim=8", "--epochs", "10"],
    )


@pytest.mark.slow
def test_killed_ddp_run_resumes_to_the_same_weights(tmp_path):
    """factorcl-sup on two gloo processes: main and estimator optimiser states (both Adam)
    restored in every process."""
    assert_killed_run_resumes(
        tmp_path,
        [
            *("--method", "factorcl-sup", *RESUME_ARGS, "--set", "method.embed_dim=16"),
            *("--set", "train.devices=2", "--set", "train.strategy=ddp", "--epochs", "5"),
        ],
    )
