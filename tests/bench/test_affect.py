"""The `affect` suite: benchmark files given on the command line."""

from __future__ import annotations

import json

import pytest

from mmfactor.bench import read_records
from mmfactor.cli import main
from mmfactor.data.examples import write_multibench


@pytest.mark.slow
def test_affect_suite_runs_on_given_files(tmp_path, capsys):
    mosi = tmp_path / "mosi_raw.pkl"
    humor = tmp_path / "humor.pkl"
    write_multibench(mosi, sizes=(48, 16, 24), steps=10, empty=0)
    write_multibench(humor, "humor", sizes=(48, 16, 24), steps=10, empty=0)
    out = tmp_path / "bench"
    args = ["bench", "affect", "--data", f"multibench:{mosi}", "--data", str(humor)]
    args += ["--methods", "supervised", "--seeds", "1", "--out", str(out)]
    args += ["--set", "train.max_epochs=1", "--set", "method.embed_dim=8"]
    args += ["--set", "method.encoder_options.transformer={d_model: 10, heads: 5, layers: 1}"]
    assert main(args) == 0
    records = read_records(out / "results.jsonl")
    assert {r["dataset"] for r in records} == {"multibench:mosi_raw", "multibench:humor"}
    humor_targets = {r["target"] for r in records if r["dataset"] == "multibench:humor"}
    assert humor_targets == {"label"}
    # each modality dropped in turn, on the data set's default target
    missing = {tuple(r["missing"]) for r in records if r["dataset"] == "multibench:mosi_raw"}
    assert missing == {(), ("text",), ("audio",), ("vision",)}
    table = (out / "results.md").read_text()
    assert "Sentiment metrics on sentiment" in table and "Acc-2 non0" in table
    assert "| supervised | head |" in table
    # resumable: a second call trains nothing
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["records"]) == len(records)


def test_affect_suite_needs_files_and_others_refuse_them(capsys):
    assert main(["bench", "affect", "--out", "unused"]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["bench", "quick", "--data", "multibench:x.pkl", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert "--data: bench suite 'quick' does not take data files" in err


@pytest.mark.slow
def test_every_method_trains_on_a_sentiment_file_with_its_sequence_defaults(tmp_path, capsys):
    import mmfactor as mf

    path = tmp_path / "mosi_raw.pkl"
    write_multibench(path, sizes=(40, 16, 16), steps=8, empty=0)
    out = tmp_path / "bench"
    args = ["bench", "affect", "--data", str(path), "--seeds", "1", "--out", str(out)]
    assert main([*args, "--set", "train.max_epochs=1"]) == 0
    records = read_records(out / "results.jsonl")
    trained = {r["method"]: r["trained_on"] for r in records}
    # CCA relates two modalities: on text + audio + vision the bench skips it, saying why.
    two_views_only = {"cca", "dcca"}
    assert set(trained) == {*mf.methods.available(), "raw"} - two_views_only
    assert "cca seed 0: skipped, CCA relates exactly two modalities" in capsys.readouterr().err
    # supcon needs classes: it falls back to the first classification target
    assert trained["supcon"] == "binary-ge0" and trained["supervised"] == "sentiment"
    config = out / "runs" / "multibench-mosi_raw" / "factorcl-sup" / "seed0" / "config.yaml"
    assert "transformer" in config.read_text()
