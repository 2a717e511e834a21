"""Fit a list of methods one after another in one launch (``python tests/train/ddp_fits.py
OUT DEVICES CASES.json``): the data-parallel equivalence test starts Python, torch and
Lightning once per device count instead of once per method and device count.

With ``DEVICES`` > 1, Lightning's launcher starts the other processes by running this script
again; each then takes part in every fit, in the same order. ``CASES.json`` maps a method to
its ``--set`` options; each run goes to ``OUT/<method>`` and rank 0 writes ``OUT/epochs.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(out: Path, devices: int, cases: dict[str, list[str]]) -> None:
    from mmfactor.config import resolve
    from mmfactor.runs import train_from_config

    strategy = "ddp" if devices > 1 else "auto"
    settings = ["data.n=600", "method.embed_dim=16", "train.batch_size=64"]
    settings += [f"train.devices={devices}", f"train.strategy={strategy}"]
    epochs, rank_zero = {}, True
    for method, extra in cases.items():
        cfg = resolve(
            method, "synthetic", sets=[*settings, *extra], overrides={"train": {"max_epochs": 2}}
        )
        run, _ = train_from_config(cfg, out / method)
        epochs[method] = run.epochs
        rank_zero &= run.is_global_zero
    if rank_zero:  # only rank 0 reports
        (out / "epochs.json").write_text(json.dumps(epochs))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text()))
