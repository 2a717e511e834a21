"""The ``frontier`` suite. Trifeatures: label-free methods pre-train once on unbiased and
once on biased pairs, methods that use labels once per target, every probe on unbiased
pairs; the report's R / U / S table. av-digits: every factor block probed."""

import pytest

from mmfactor.bench import get_suite, read_records, run_bench
from mmfactor.bench.runner import probe_data_config
from mmfactor.bench.suites import AV_DIGITS_TARGETS, TRIFEATURES_TARGETS, BenchData


def test_probe_data_drops_the_pre_training_options_and_keeps_the_sets() -> None:
    entry = BenchData("trifeatures", {"size": 32}, pretrain={"biased": True})
    trained_on = {"name": "trifeatures", "size": 16, "n": 100, "biased": True}
    assert probe_data_config(entry, trained_on) == {"name": "trifeatures", "size": 16, "n": 100}
    entry = BenchData("trifeatures", {"biased": False}, pretrain={"biased": True})
    assert probe_data_config(entry, trained_on)["biased"] is False


def test_frontier_suite_pretrains_label_free_methods_twice_and_tabulates_r_u_s(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("MMFACTOR_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "frontier"
    logs: list[str] = []
    sets = ["data.size=16", "data.n=120", "data.per_combination=1", "train.max_epochs=1"]
    sets += ["method.embed_dim=8", "method.encoder_options.alexnet.width=0.05"]
    run_bench(
        get_suite("frontier"),
        out,
        methods=["clip", "supervised"],
        datasets=["trifeatures"],
        sets=sets,
        log=logs.append,
    )
    runs = out / "runs"
    trained = sorted(str(p.relative_to(runs)) for p in runs.glob("*/*/seed0"))
    # clip: one model on unbiased pairs (reused for both textures), one on biased pairs.
    assert [t for t in trained if "/clip/" in t] == [
        "trifeatures-shared/clip/seed0",
        "trifeatures-synergy/clip/seed0",
    ]
    assert sum("/supervised/" in t for t in trained) == 4  # one per target
    biased = (runs / "trifeatures-synergy/clip/seed0/config.yaml").read_text()
    assert "biased: true" in biased
    assert "biased: true" not in (runs / "trifeatures-shared/clip/seed0/config.yaml").read_text()

    records = read_records(out / "results.jsonl")
    scored = {
        (r["method"], r["target"])
        for r in records
        if r.get("metric") == "balanced_accuracy" and r.get("factors") == "all"
    }
    for method in ("clip", "supervised", "raw"):
        assert {(method, t) for t in TRIFEATURES_TARGETS} <= scored
    # Probes fit and score on unbiased pairs (about 10% positives): there balanced accuracy
    # and accuracy differ; on a biased test split (all positives) they would be equal.
    biased_clip = {
        r["metric"]: r["value"]
        for r in records
        if r["method"] == "clip"
        and r.get("bench_target") == "synergy"
        and r["target"] == "synergy"
        and r["factors"] == "all"
        and not r["missing"]
    }
    assert biased_clip["accuracy"] != biased_clip["balanced_accuracy"]
    markdown = (out / "results.md").read_text()
    assert "| InfMasking (published) |" in markdown
    assert "| Cross (published, ours: clip) |" in markdown


@pytest.mark.slow
def test_frontier_av_digits_probes_each_block_on_every_target(tmp_path):
    """av-digits in ``frontier``: clip trains once and is probed on the four targets, each
    factor block on its own (is the speaker in a shared block or in the audio's?), the raw
    inputs each modality alone too."""
    out = tmp_path / "frontier"
    sets = ["data.max_frames=12", "train.max_epochs=1", "method.embed_dim=8"]
    run_bench(
        get_suite("frontier"),
        out,
        methods=["clip"],
        datasets=["av-digits"],
        sets=sets,
        log=lambda _: None,
    )
    trained = sorted(str(p.relative_to(out / "runs")) for p in out.glob("runs/*/*/seed0"))
    assert trained == ["av-digits-digit/clip/seed0"]
    scored = {
        (r["method"], r["target"], r["factors"])
        for r in read_records(out / "results.jsonl")
        if r.get("metric") == "balanced_accuracy" and not r.get("missing")
    }
    for target in AV_DIGITS_TARGETS:
        assert {("clip", target, "shared"), ("clip", target, "all")} <= scored
        for factors in ("specific:audio", "specific:image", "all"):
            assert ("raw", target, factors) in scored
    assert "av-digits" in (out / "results.md").read_text()
