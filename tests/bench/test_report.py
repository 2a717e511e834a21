"""report.html: built by the bench from records and run directories, rebuilt by
`mmfactor report`; the noise and latent-probe records it draws stay out of the tables."""

from __future__ import annotations

import re

import numpy as np
import pytest

import mmfactor as mf
from mmfactor.bench import get_suite, read_records, run_bench
from mmfactor.bench.suites import BenchData, Suite
from mmfactor.cli import main
from mmfactor.evaluate import latent_information, noise_records, standard_records
from mmfactor.evaluate.reference import RawFeatures


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    run_bench(
        get_suite("quick"),
        out,
        methods=["supervised", "mucmm"],
        datasets=["synthetic"],
        sets=["train.max_epochs=2"],
        log=lambda msg: None,
    )
    return out


def test_report_has_every_figure_and_the_tables(bench_dir):
    page = (bench_dir / "report.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    expected = {
        "mix.png",
        "factors-targets-synthetic.png",
        "latent-mi-synthetic.png",
        "missing-synthetic.png",
        "noise-synthetic.png",
        "embeddings-synthetic.png",
        "training-synthetic.png",
    }
    assert expected <= set(images)
    for name in images:
        assert (bench_dir / name).stat().st_size > 2000
    assert page.count("<table>") >= 3 and "<td>" in page
    assert "Run configs" in page and "supervised" in page and mf.__version__ in page
    assert "http://" not in page and "https://" not in page  # opens offline


def test_noise_and_latent_records_stay_out_of_the_tables(bench_dir):
    records = read_records(bench_dir / "results.jsonl")
    noisy = [r for r in records if "noise" in r]
    latent = [r for r in records if r["protocol"] == "latent-probe"]
    assert {r["noise"] for r in noisy} == {0.0, 0.5, 1.0, 2.0}  # exact: config levels copied
    assert {r["target"] for r in latent} >= {"latent:shared", "latent:unique:x1"}
    clean = standard_records(records)
    assert len(clean) == len(records) - len(noisy) - len(latent)
    markdown = (bench_dir / "results.md").read_text()
    assert "latent:" not in markdown


def test_mmfactor_report_rebuilds_the_page(bench_dir):
    (bench_dir / "report.html").unlink()
    (bench_dir / "noise-synthetic.png").unlink()
    assert main(["report", str(bench_dir)]) == 0
    assert (bench_dir / "report.html").exists() and (bench_dir / "noise-synthetic.png").exists()


def test_noise_lowers_the_probe_and_latent_bits_follow_the_truth():
    data = mf.datasets.load("synthetic", n=1500)
    raw = RawFeatures()
    records = noise_records(raw, data, "shared", [0.0, 3.0])
    acc = {r["noise"]: r["value"] for r in records if r["metric"] == "accuracy"}
    assert acc[0.0] > acc[3.0] + 0.05
    clean = [r for r in mf.evaluate(raw, data, targets=["shared"], factors=["all"])]
    clean_acc = next(r["value"] for r in clean if r["metric"] == "accuracy" and not r["missing"])
    assert acc[0.0] == pytest.approx(clean_acc)
    bits = latent_information(raw, data)
    # x1 is generated from the shared and x1's unique latents, not from x2's.
    assert bits["specific:x1"]["unique:x1"] > 1.0
    assert bits["specific:x1"]["unique:x2"] < 0.2
    assert np.isfinite([v for row in bits.values() for v in row.values()]).all()


def test_a_data_set_benched_under_several_targets_gets_its_pictures(tmp_path):
    # Run directories are runs/synthetic-mix@0/..., runs/synthetic-mix@1.0/...: the report
    # still finds a run per method for the embeddings and the training curves.
    suite = Suite(
        "two-targets",
        tuple(
            BenchData(
                "synthetic",
                {"n": 600},
                target=t,
                eval_targets=(t, "shared"),
                missing=("x1",),
                train={"max_epochs": 1},
            )
            for t in ("mix@0", "mix@1.0")
        ),
    )
    run_bench(suite, tmp_path, methods=["supervised", "clip"], log=lambda msg: None)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "synthetic-mix@0",
        "synthetic-mix@1.0",
    ]
    # clip is trained once and probed under both entries: one score, not two equal ones
    # passed off as a spread; supervised has a model per target.
    main_table = (tmp_path / "results.md").read_text().split("Missing modality")[0]
    rows = {line.split("|")[1].strip(): line for line in main_table.splitlines() if "|" in line}
    assert "±" not in rows["clip"] and "±" in rows["supervised"]
    page = (tmp_path / "report.html").read_text()
    assert "| method | target | complete | without x1 |" in (tmp_path / "results.md").read_text()
    for name in ("embeddings-synthetic.png", "training-synthetic.png", "mix.png"):
        assert f'src="{name}"' in page and (tmp_path / name).exists()
