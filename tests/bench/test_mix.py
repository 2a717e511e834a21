"""The ``mix`` suite: one entry per supervising target mix@r, label-free methods trained
once, the accuracy-against-r plot."""

from mmfactor.bench import get_suite, mix_curves, read_records, run_bench
from mmfactor.bench.suites import MIX_TARGETS
from mmfactor.io import dumps_json


def test_mix_suite_trains_label_free_methods_once_and_plots(tmp_path):
    out = tmp_path / "mix"
    logs: list[str] = []
    kwargs = {
        "methods": ["clip", "supcon"],
        "seeds": 1,
        "sets": ["data.n=400", "train.max_epochs=1"],
        "log": logs.append,
    }
    run_bench(get_suite("mix"), out, **kwargs)
    runs = out / "runs"
    assert sorted(p.name for p in runs.iterdir()) == sorted(f"synthetic-{t}" for t in MIX_TARGETS)
    trained = {(p.parent.parent.name, p.parent.name) for p in runs.glob("*/*/seed0")}
    assert {m for _, m in trained} == {"clip", "supcon"}
    assert [d for d, m in trained if m == "clip"] == ["synthetic-mix@0"]  # reused for every r
    assert sum(m == "supcon" for _, m in trained) == len(MIX_TARGETS)  # trained on each mix@r
    assert sum("reusing" in line for line in logs) == len(MIX_TARGETS) - 1

    records = read_records(out / "results.jsonl")
    curves = mix_curves(records)
    assert set(curves) == {"clip", "supcon", "raw"}
    ratios = [float(t.removeprefix("mix@")) for t in MIX_TARGETS]
    # exact: both sides parse r from the same "mix@r" strings
    assert all([r for r, _, _ in points] == ratios for points in curves.values())
    assert (out / "mix.png").read_bytes()[:4] == b"\x89PNG"
    assert "mix.png" in (out / "results.md").read_text()

    logs.clear()
    run_bench(get_suite("mix"), out, **kwargs)  # resumed: every entry is kept apart
    assert all("done, skipped" in line for line in logs)
    assert len(read_records(out / "results.jsonl")) == len(records)

    # A run stopped after clip's first entry: resumed, the later entries load that model.
    kept = [r for r in records if r["method"] != "clip" or r["bench_target"] == "mix@0"]
    (out / "results.jsonl").write_text("".join(dumps_json(r) + "\n" for r in kept))
    logs.clear()
    run_bench(get_suite("mix"), out, **kwargs)
    clip_lines = [line for line in logs if " clip " in line]
    assert sum("loading the model trained for an earlier entry" in x for x in clip_lines) == 1
    assert not any(line.endswith(": training") for line in clip_lines)
    assert [p.parent.parent.name for p in runs.glob("*/clip/seed0")] == ["synthetic-mix@0"]
    assert len(read_records(out / "results.jsonl")) == len(records)
