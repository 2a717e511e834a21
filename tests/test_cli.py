import json

import pytest
import yaml
from tests.commands import run_cli

from mmfactor.cli import main

SMALL = ["--set", "data.n=600", "--set", "method.embed_dim=16", "--epochs", "2"]


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
    # The library names its argument (missing=...); the command line names its flag.
    assert main(["evaluate", str(out), "--missing", "x9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "mmfactor: error: --missing: data set 'synthetic' has no modality 'x9'; modalities: x1, x2"
    )


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
            "train: lr must be a number > 0, got -1",
        ),
        (
            ["fit", "--method", "clip", "--data", "synthetic", "--config", "missing.yaml"],
            "missing.yaml: no such config file",
        ),
        (
            ["fit", "--method", "clip", "--data", "synthetic", "--set", "oops"],
            "--set: expected section.key=value, got 'oops'",
        ),
        (["evaluate", "not-a-run"], "not a run directory"),
        (["bench", "nosuite", "--out", "x"], "unknown bench suite 'nosuite'"),
        (["bench", "quick", "--seeds", "0", "--out", "x"], "error: --seeds must be at least 1"),
        (
            ["bench", "quick", "--methods", "nope", "--out", "x"],
            "error: --methods: unknown method 'nope'",
        ),
        (
            ["bench", "quick", "--datasets", "nodata", "--out", "x"],
            "error: --datasets: suite 'quick' has no data set 'nodata'",
        ),
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


def test_library_errors_name_arguments_and_the_cli_names_flags(tmp_path):
    from mmfactor.bench import get_suite, run_bench
    from mmfactor.cli import error_line
    from mmfactor.config import resolve
    from mmfactor.errors import InputError

    with pytest.raises(InputError) as err:
        run_bench(get_suite("quick"), tmp_path / "b", seeds=0)
    assert str(err.value) == "seeds must be at least 1, got 0" and err.value.argument == "seeds"
    assert error_line(err.value, "bench") == "--seeds must be at least 1, got 0"
    with pytest.raises(InputError) as err:
        resolve("clip", "synthetic", sets=["oops"])
    assert str(err.value).startswith("sets: ") and err.value.argument == "sets"
    assert error_line(err.value, "fit").startswith("--set: expected section.key=value")
    # a library argument some other command passes (or none) is left as the library says it
    assert error_line(err.value, "data") == str(err.value)
    assert error_line(InputError("x"), "bench") == "x"
    assert not (tmp_path / "b").exists()  # nothing written before the arguments are checked
