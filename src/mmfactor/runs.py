"""Run directories: train from a config, and load a trained run back.

What :func:`mmfactor.train.fit` writes in a run directory (its ``out``):

- ``config.yaml``: the resolved run config, everything needed to reproduce the run (written
  first, when a config is given: always from :func:`train_from_config` and the CLI);
- ``checkpoints/last.ckpt``: the full training state for resuming (weights, optimiser
  states, the best weights so far, the early-stopping count), written at the end of an epoch
  every ``train.checkpoint_interval`` seconds and after the last epoch. There is no separate
  best checkpoint: the best weights travel inside ``last.ckpt`` and end in ``model.pt``;
- ``checkpoints/previous.ckpt``: the checkpoint written before ``last.ckpt``, which
  resuming takes, with a warning, when ``last.ckpt`` cannot be read (a damaged one is set
  aside as ``last.ckpt.unreadable``; :mod:`mmfactor.train.checkpoints`);
- ``.lock``: while a process trains into the directory, its pid, host and start time
  (:mod:`mmfactor.lock`);
- ``logs/attemptK/metrics.csv``: the values logged per epoch by the K-th start of training
  (``attempt0``, then one more per resume);
- ``model.pt``: the final weights, a state dict (the best ones on ``train.monitor`` unless
  ``train.restore_best`` is off), written when training ends;
- ``metrics.json``: ``epochs``, ``train_seconds``, ``samples_per_second``,
  ``best_valid_loss``, ``target``, ``history`` (the logs of all attempts merged, one entry
  per epoch), ``mmfactor_version``, the version that wrote the run, ``status`` (``ok``, or
  ``diverged`` with ``diverged``: the ``epoch``, ``step``, ``part`` and ``value`` of the first
  non-finite value, :class:`mmfactor.errors.DivergedError`) and ``skipped_steps``
  (``train.on_nonfinite: skip``).

A diverged run keeps the checkpoint of its last finite epoch and writes ``model.pt`` (the best
weights, else the last finite ones) and ``metrics.json``; :func:`load_run` refuses it unless
told otherwise.

A method fitted in closed form only (``cca``) writes no ``checkpoints/`` and no ``logs/``.
In a data-parallel run only the first process writes ``model.pt`` and ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from mmfactor import __version__
from mmfactor.config import load_yaml
from mmfactor.data.dataset import MultimodalDataset
from mmfactor.data.registry import load as load_data
from mmfactor.errors import InputError
from mmfactor.io import load_torch, rename_state_keys
from mmfactor.methods.base import Method
from mmfactor.methods.registry import build, method_class
from mmfactor.train import Run, fit


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
                f"target: {model.name} needs a {' or '.join(model.task_kinds)} target, and "
                f"{target.name!r} is a {target.kind} target; choose one of "
                f"{', '.join(suitable) or '(none in this data set)'}",
                argument="target",
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
    cfg: dict[str, Any],
    out: str | Path | None,
    data: MultimodalDataset | None = None,
    *,
    restart: bool = False,
) -> tuple[Run, MultimodalDataset]:
    """Load the data, build the method (seeded) and train it as ``cfg`` says.

    If ``out`` already holds a run, its config must equal ``cfg``; training then resumes
    from the last checkpoint, or starts over with ``restart`` (:func:`mmfactor.train.fit`).
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
                f"out: {out} holds a run with a different config "
                f"({', '.join(changed) or 'sections differ'}); use another directory",
                argument="out",
            )
    data = data if data is not None else data_from_config(cfg)
    train = dict(cfg["train"])
    seed = train.pop("seed")
    L.seed_everything(seed, workers=True, verbose=False)
    model = model_from_config(cfg, data)
    run = fit(model, data, seed=seed, out=out, config=cfg, restart=restart, **train)
    return run, data


def load_run(
    run_dir: str | Path, *, allow_diverged: bool = False
) -> tuple[Method, MultimodalDataset, dict[str, Any]]:
    """The trained model of a run directory (weights from ``model.pt``), its data, its config.

    Weights saved before a method renamed some of its modules load under the new names
    (:func:`load_weights`); weights that still do not fit are an :class:`InputError` naming
    the version that wrote them. A run whose training diverged (``metrics.json`` status
    ``diverged``) is an :class:`InputError` unless ``allow_diverged``: its ``model.pt`` holds
    the best (or last finite) weights of a training that did not finish.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise InputError(f"{run_dir}: not a run directory (no config.yaml)")
    if not (run_dir / "model.pt").is_file():
        raise InputError(
            f"{run_dir}: the run has not finished (no model.pt); run fit again to resume it"
        )
    metrics = load_yaml(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
    if metrics.get("status") == "diverged" and not allow_diverged:
        where = metrics.get("diverged") or {}
        raise InputError(
            f"allow_diverged: {run_dir} holds a diverged training (epoch {where.get('epoch')} "
            f"step {where.get('step')}: {where.get('part')!r} is {where.get('value')}); pass "
            "it to use the last finite weights anyway",
            argument="allow_diverged",
        )
    cfg = load_yaml(run_dir / "config.yaml")
    data = data_from_config(cfg)
    model = model_from_config(cfg, data)
    load_weights(
        model,
        load_torch(run_dir / "model.pt"),
        run_dir / "model.pt",
        metrics.get("mmfactor_version"),
    )
    model.eval()
    model.train_stats = {
        k: metrics.get(k) for k in ("train_seconds", "samples_per_second", "epochs", "target")
    }
    return model, data, cfg


def load_weights(
    model: Method, state: dict[str, torch.Tensor], source: str | Path, written_by: str | None
) -> None:
    """Load ``state`` (read from ``source``, written by mmfactor ``written_by``) into
    ``model``, strictly, after renaming its keys by the method's ``renamed_parameters``
    (old prefix -> new, :func:`mmfactor.io.rename_state_keys`).

    Raises:
        InputError: the weights do not fit the installed method: missing or unexpected
            keys, or different shapes.
    """
    renamed = getattr(model, "renamed_parameters", {})
    state = rename_state_keys(state, renamed)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [
        k
        for k in expected
        if k in state and getattr(state[k], "shape", None) != getattr(expected[k], "shape", None)
    ]
    if missing or unexpected or reshaped:
        problems = [
            f"{what} {', '.join(repr(k) for k in keys[:3])}{', ...' if len(keys) > 3 else ''}"
            for what, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("other shape", reshaped),
            )
            if keys
        ]
        writer = f"mmfactor {written_by}" if written_by else "an unknown mmfactor (not recorded)"
        raise InputError(
            f"{source}: weights written by {writer} do not fit {model.name or type(model).__name__}"
            f" of the installed mmfactor {__version__} ({'; '.join(problems)}); train "
            "the run again with this version"
        )
    model.load_state_dict(state)
