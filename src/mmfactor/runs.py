"""Run directories: train from a config, and load a trained run back.

A run directory holds ``config.yaml`` (everything needed to reproduce the run),
``checkpoints/`` (``last.ckpt`` for resuming, ``best.ckpt``), ``model.pt`` (the final weights),
``metrics.json`` and ``logs/metrics.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from mmfactor.config import load_yaml
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.data.registry import load as load_data
from mmfactor.errors import InputError
from mmfactor.io import load_torch
from mmfactor.methods.base import Method
from mmfactor.methods.registry import build, method_class
from mmfactor.train.engine import Run, fit


def data_from_config(cfg: dict[str, Any]) -> MultimodalDataset:
    options = {k: v for k, v in cfg["data"].items() if k != "name"}
    return load_data(cfg["data"]["name"], **options)


def model_from_config(cfg: dict[str, Any], data: MultimodalDataset) -> Method:
    options = {k: v for k, v in cfg["method"].items() if k != "name"}
    target = data.target(cfg["train"].get("target"))
    model = build(cfg["method"]["name"], data.modalities, **options)
    if model.uses_labels:
        if target.kind not in model.task_kinds:
            suitable = [t.name for t in data.targets.values() if t.kind in model.task_kinds]
            raise InputError(
                f"{model.name} needs a {' or '.join(model.task_kinds)} target, and "
                f"{target.name!r} is a {target.kind} target; choose one with --target: "
                f"{', '.join(suitable) or '(none in this data set)'}"
            )
        model.bind_task(target.task)
    return model


def target_for(method: str, cfg: dict[str, Any], data: MultimodalDataset) -> str | None:
    """The supervising target of a run: the configured one, else the data set's default,
    else (a method that cannot train on the default's kind, e.g. ``supcon`` on sentiment
    regression labels) the data set's first target of a kind the method takes."""
    cls = method_class(method)
    if cfg["train"].get("target") is not None or not cls.uses_labels:
        return cfg["train"].get("target")
    default = data.target()
    if default.kind in cls.task_kinds:
        return None
    return next((t.name for t in data.targets.values() if t.kind in cls.task_kinds), None)


def train_from_config(
    cfg: dict[str, Any], out: str | Path | None, data: MultimodalDataset | None = None
) -> tuple[Run, MultimodalDataset]:
    """Load the data, build the method (seeded) and train it as ``cfg`` says.

    If ``out`` already holds a run, its config must equal ``cfg``; training then resumes
    from the last checkpoint.
    """
    if out is not None and (Path(out) / "config.yaml").exists():
        saved = load_yaml(Path(out) / "config.yaml")
        if saved != cfg:
            changed = sorted(
                f"{s}.{k}"
                for s in cfg
                for k in set(cfg[s]) | set(saved.get(s, {}))
                if cfg[s].get(k) != saved.get(s, {}).get(k)
            )
            raise InputError(
                f"{out} holds a run with a different config "
                f"({', '.join(changed) or 'sections differ'}); use another --out"
            )
    data = data if data is not None else data_from_config(cfg)
    train = dict(cfg["train"])
    seed = train.pop("seed")
    L.seed_everything(seed, workers=True, verbose=False)
    model = model_from_config(cfg, data)
    run = fit(model, data, seed=seed, out=out, config=cfg, **train)
    return run, data


def load_run(run_dir: str | Path) -> tuple[Method, MultimodalDataset, dict[str, Any]]:
    """The trained model of a run directory (weights from ``model.pt``), its data, its config."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise InputError(f"{run_dir}: not a run directory (no config.yaml)")
    if not (run_dir / "model.pt").is_file():
        raise InputError(
            f"{run_dir}: the run has not finished (no model.pt); run fit again to resume it"
        )
    cfg = load_yaml(run_dir / "config.yaml")
    data = data_from_config(cfg)
    model = model_from_config(cfg, data)
    model.load_state_dict(load_torch(run_dir / "model.pt"))
    model.eval()
    metrics = load_yaml(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
    model.train_stats = {
        k: metrics.get(k) for k in ("train_seconds", "samples_per_second", "epochs", "target")
    }
    return model, data, cfg
