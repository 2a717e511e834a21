"""The package layers: no import in ``src/mmfactor`` runs up the layers or closes a cycle,
and importing a low layer loads nothing above it (no Lightning with the estimators)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mmfactor"

# Lowest first. A package may import packages of its own layer (without a cycle) and of lower
# ones. The top-level package (``mmfactor/__init__.py``, ``from mmfactor import __version__``)
# is outside the layers.
LAYERS: list[set[str]] = [
    {"errors", "checks", "io", "yamlio", "distributed", "optim", "lock"},
    {"data"},
    {"encoders", "augment", "estimators", "losses"},
    {"methods"},
    {"train"},
    {"evaluate", "diagnostics", "interpret", "config"},  # config resolves run configs
    {"runs", "sklearn"},
    {"bench"},  # runs suites of runs
    {"cli"},
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def packages() -> set[str]:
    """The first-level packages and modules of ``mmfactor``."""
    return {
        p.stem if p.suffix == ".py" else p.name
        for p in SRC.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }


def package_imports() -> dict[str, dict[str, list[str]]]:
    """``{importer: {imported: ["file:line", ...]}}`` between first-level packages, from
    every ``import mmfactor.X`` and ``from mmfactor.X import`` (lazy ones included)."""
    names = packages()
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts == ("__init__",):
            continue  # the top-level package: imports the public names of every layer
        source = parts[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against the importing module's package
                    base = ["mmfactor", *parts[: len(parts) - node.level]]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                modules = (
                    [f"mmfactor.{a.name}" for a in node.names] if module == "mmfactor" else [module]
                )
            else:
                continue
            for module in modules:
                target = module.split(".")
                if target[0] != "mmfactor" or len(target) < 2 or target[1] not in names:
                    continue  # not mmfactor, or the top-level package (__version__)
                if target[1] != source:
                    where = f"{path.relative_to(SRC.parent)}:{node.lineno}"
                    graph.setdefault(source, {}).setdefault(target[1], []).append(where)
    return graph


def test_every_package_has_a_layer():
    missing = sorted(packages() - set(LEVEL))
    assert not missing, f"put these mmfactor packages in a layer of LAYERS: {missing}"


def test_no_import_runs_up_the_layers():
    up = [
        f"{source} -> {target} ({', '.join(where)})"
        for source, targets in package_imports().items()
        for target, where in targets.items()
        if source in LEVEL and target in LEVEL and LEVEL[target] > LEVEL[source]
    ]
    assert not up, "imports up the layers:\n" + "\n".join(up)


def test_package_imports_have_no_cycle():
    graph = package_imports()
    done: set[str] = set()

    def visit(path: list[str]) -> list[str] | None:
        """Depth first from ``path[-1]``; the first cycle found, else None."""
        for nxt in graph.get(path[-1], {}):
            if nxt in path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done and (cycle := visit([*path, nxt])):
                return cycle
        done.add(path[-1])
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit([start])):
            pytest.fail("import cycle: " + " -> ".join(cycle))


@pytest.mark.parametrize("package", ["data", "encoders", "augment", "estimators", "losses"])
def test_importing_a_low_layer_loads_nothing_above_it(package):
    above = sorted(f"mmfactor.{p}" for p in LEVEL if LEVEL[p] > LEVEL[package])
    code = (
        "import json, sys\n"
        f"import mmfactor.{package}\n"
        f"print(json.dumps([m for m in {['lightning', *above]!r} if m in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(proc.stdout.splitlines()[-1]) == []
