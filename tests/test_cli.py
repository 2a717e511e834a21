import json
import subprocess
import sys

import pytest
import yaml

from mmfactor.cli import main

SMALL = ["--set", "data.n=600", "--set", "method.embed_dim=16", "--epochs", "2"]


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mmfactor.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_fit_then_evaluate_json(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            ["fit", "--method", "clip", "--data", "synthetic", *SMALL, "--out", str(out), "--json"]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs"] == 2 and (out / "config.yaml").is_file()
    assert main(["evaluate", str(out), "--missing", "x2", "--targets", "shared", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    fields = {
        "method",
        "dataset",
        "seed",
        "target",
        "factors",
        "protocol",
        "metric",
        "value",
        "split",
        "missing",
        "train_seconds",
        "samples_per_second",
        "version",
    }
    assert fields <= set(records[0])
    assert {tuple(r["missing"]) for r in records} == {(), ("x2",)}


def test_fit_resumes_and_refuses_a_different_config(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["fit", "--method", "supervised", "--data", "synthetic", *SMALL, "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 0  # same command: resumes (already complete)
    capsys.readouterr()
    assert main([*args[:-2], "--seed", "5", "--out", str(out)]) == 2
    assert "different config (train.seed)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--method", "nope", "--data", "synthetic"], "unknown method 'nope'"),
        (["fit", "--method", "clip", "--data", "nodata"], "unknown data set 'nodata'"),
        (
            ["fit", "--method", "clip", "--data", "synthetic", "--set", "train.lrr=1"],
            "config key train.'lrr' does not exist",
        ),
        (
            ["fit", "--method", "clip", "--data", "synthetic", "--set", "method.temprature=1"],
            "config key method.'temprature' does not exist",
        ),
        (
            ["fit", "--method", "clip", "--data", "synthetic", "--set", "data.nn=5"],
            "config key data.'nn' does not exist",
        ),
        (
            ["fit", "--method", "clip", "--data", "synthetic", "--set", "train.lr=-1"],
            "train.lr must be a positive number",
        ),
        (
            ["fit", "--method", "clip", "--data", "synthetic", "--config", "missing.yaml"],
            "missing.yaml: no such config file",
        ),
        (
            ["fit", "--method", "clip", "--data", "synthetic", "--set", "oops"],
            "expected section.key=value",
        ),
        (["evaluate", "not-a-run"], "not a run directory"),
        (["bench", "nosuite", "--out", "x"], "unknown bench suite 'nosuite'"),
        (["data", "inspect", "nodata"], "unknown data set 'nodata'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, args, message, capsys):
    if args[0] == "fit":
        args = [*args, "--out", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_bad_data_option_value_exits_2(tmp_path, capsys):
    args = [
        "fit",
        "--method",
        "clip",
        "--data",
        "synthetic",
        "--set",
        "data.modalities=1",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(args) == 2
    assert "modalities" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_sequence_data_set_by_set_gets_the_sequence_defaults(tmp_path, capsys):
    out = tmp_path / "seq"
    args = [
        "fit",
        "--method",
        "clip",
        "--data",
        "synthetic",
        "--set",
        "data.n=300",
        "--set",
        "data.kind=sequence",
        "--epochs",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    # the `sequence` family's: the FactorCL paper's Transformer, MLP for vector modalities
    assert cfg["method"]["encoder"] == {"sequence": "transformer"}
    transformer = cfg["method"]["encoder_options"]["transformer"]
    # exact: config values (a float among them) copied from the family defaults
    assert transformer == {"d_model": 40, "heads": 5, "layers": 5, "attention_dropout": 0.0}


def test_data_list_and_inspect(capsys):
    assert main(["data", "list", "--json"]) == 0
    names = json.loads(capsys.readouterr().out)
    assert {"synthetic", "uci-mfeat", "nutrimouse", "factorcl-synthetic"} <= set(names)
    assert main(["data", "inspect", "uci-mfeat"]) == 0
    text = capsys.readouterr().out
    assert "uci-mfeat: 2000 samples" in text and "digit" in text


def test_json_stdout_is_one_document_in_a_subprocess(tmp_path):
    proc = run_cli(
        "fit",
        "--method",
        "supervised",
        "--data",
        "synthetic",
        *SMALL,
        "--out",
        str(tmp_path / "r"),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)  # progress went to stderr


def test_bench_writes_resumable_results(tmp_path, capsys):
    out = tmp_path / "bench"
    args = [
        "bench",
        "quick",
        "--methods",
        "clip,supervised",
        "--datasets",
        "synthetic",
        "--set",
        "data.n=600",
        "--set",
        "train.max_epochs=1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    lines = (out / "results.jsonl").read_text().splitlines()
    table = (out / "results.md").read_text()
    assert "| clip |" in table and "| supervised |" in table and "| raw |" in table
    capsys.readouterr()
    assert main(args) == 0  # resumed: nothing re-run, nothing appended
    # exact: nothing is re-run, so the file (floats as text) must be the bytes written before
    assert (out / "results.jsonl").read_text().splitlines() == lines
    assert "done, skipped" in capsys.readouterr().err


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
    "cca": [],  # closed form, no gradient training: nothing to distribute (0 epochs)
    "clip": [],
    "cross-self": SGD,
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


@pytest.mark.slow
@pytest.mark.parametrize("method", DDP_CASES)
def test_ddp_two_cpu_processes_match_one_process(method, tmp_path):
    """Global batch 64 split over 2 gloo processes, negatives gathered, gradients averaged:
    the weights after 2 epochs equal those of one process with batch 64."""
    import torch

    weights = {}
    extra = [arg for option in DDP_CASES[method] for arg in ("--set", option)]
    for devices, strategy in ((2, "ddp"), (1, "auto")):
        out = tmp_path / f"run{devices}"
        proc = run_cli(
            "fit",
            "--method",
            method,
            *extra,
            "--data",
            "synthetic",
            "--set",
            "data.n=600",
            "--set",
            "method.embed_dim=16",
            "--set",
            f"train.devices={devices}",
            "--set",
            f"train.strategy={strategy}",
            "--set",
            "train.batch_size=64",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--json",
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        # one JSON document, from rank 0 only
        assert json.loads(proc.stdout)["epochs"] == (0 if method == "cca" else 2)
        weights[devices] = torch.load(out / "model.pt", weights_only=True)
    diff = max(float((weights[2][k] - weights[1][k]).abs().max()) for k in weights[1])
    assert diff < 1e-4


def assert_killed_run_resumes(tmp_path, fit_args: list[str]) -> None:
    """SIGKILL a real `mmfactor fit` (and any worker processes: it runs in a session of its
    own, as a Ctrl-C or a scheduler's kill would take the job) once its first checkpoint
    exists; the same command then finishes the run, with the weights of an uninterrupted
    one, bit for bit."""
    import os
    import signal
    import time

    import torch

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
        ["--method", "cross-self", *RESUME_ARGS, "--set", "method.embed_dim=8", "--epochs", "40"],
    )


@pytest.mark.slow
def test_killed_ddp_run_resumes_to_the_same_weights(tmp_path):
    """factorcl-sup on two gloo processes: main and estimator optimiser states (both Adam)
    restored in every process."""
    assert_killed_run_resumes(
        tmp_path,
        [
            *("--method", "factorcl-sup", *RESUME_ARGS, "--set", "method.embed_dim=16"),
            *("--set", "train.devices=2", "--set", "train.strategy=ddp", "--epochs", "12"),
        ],
    )
