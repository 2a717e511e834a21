"""YAML reading that takes numbers as people write them.

PyYAML implements YAML 1.1, where a float needs a dot: ``1e-3``, ``1E5`` and ``5e-4`` are
read as *strings*, so ``--set train.lr=1e-3`` failed validation. :func:`load_yaml_text`
reads them as floats, as YAML 1.2 (and JSON) do; everything else is ``yaml.safe_load``.

Example:
    >>> load_yaml_text("lr: 1e-3\\nsteps: 1E5\\nw: -2.5e-1\\nname: e5\\nn: 10")
    {'lr': 0.001, 'steps': 100000.0, 'w': -0.25, 'name': 'e5', 'n': 10}
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` plus YAML 1.2's exponent floats without a dot."""


# add_implicit_resolver copies the resolver table into the subclass: SafeLoader is untouched.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def load_yaml_text(text: str) -> Any:
    """Parse one YAML document safely (plain data only), exponent floats included."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
