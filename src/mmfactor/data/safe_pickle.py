"""Loading pickled data files without running code from them.

``pickle.load`` calls whatever the file names, so a pickle from the internet can run any
code. The public multimodal benchmark files (MultiBench, MMSA) are pickles of dicts of NumPy
arrays; :func:`load_pickle` reads those through an unpickler that admits only NumPy arrays,
NumPy scalars and dtypes, builtin containers and values, and refuses anything else with an
:class:`~mmfactor.errors.InputError` naming the file and the refused global, before it is
called.

Compatibility: files written by NumPy 1.x name ``numpy.core.*`` globals, which NumPy 2 serves
as ``numpy._core.*``; both spellings are admitted and mapped to the installed NumPy. Python 2
pickles are read with ``encoding="latin1"`` (NumPy's advice for its arrays), which leaves
Python 3 pickles unchanged.

Example:
    >>> import pickle
    >>> import numpy as np
    >>> data = {"train": {"text": np.zeros((2, 3), dtype=np.float32), "id": ["a", "b"]}}
    >>> loads_safe(pickle.dumps(data))["train"]["text"].shape
    (2, 3)
    >>> class Evil:
    ...     def __reduce__(self):
    ...         return (print, ("pwned",))
    >>> from mmfactor.errors import InputError
    >>> try:
    ...     loads_safe(pickle.dumps(Evil()))
    ... except InputError as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    <bytes>: refusing to load builtins.print from a pickle ...
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mmfactor.errors import InputError

# NumPy's private module, "numpy._core" on NumPy 2 and "numpy.core" on NumPy 1.
_CORE = np.ndarray.__reduce__(np.zeros(1))[0].__module__.rsplit(".", 1)[0]

#: (module, name) pairs a data pickle may name, with ``numpy.core`` for NumPy's core module.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("builtins", "frozenset"),
        ("builtins", "set"),
        ("builtins", "slice"),
        ("builtins", "range"),
        ("collections", "OrderedDict"),
        # Python 2 names, as pickle's fix_imports maps them.
        ("__builtin__", "set"),
        ("__builtin__", "frozenset"),
        ("__builtin__", "complex"),
        ("__builtin__", "bytearray"),
        ("__builtin__", "slice"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose :meth:`find_class` admits only :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        canonical = module.replace("numpy._core", "numpy.core", 1)
        if (canonical, name) not in ALLOWED_GLOBALS:
            raise InputError(
                f"{self.source}: refusing to load {module}.{name} from a pickle (only NumPy "
                "arrays, scalars, dtypes and builtin containers are allowed)"
            )
        if canonical.startswith("numpy.core"):
            module = canonical.replace("numpy.core", _CORE, 1)
        return super().find_class(module, name)


def _load(file: Any, source: str) -> Any:
    try:
        return RestrictedUnpickler(file, source).load()
    except InputError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(
            f"{source}: not a readable pickle (truncated or corrupt?): {exc}"
        ) from None


def load_pickle(path: str | Path) -> Any:
    """The object pickled in ``path``, loaded without running code from it.

    Raises:
        InputError: the file is missing, not a pickle, truncated, or names anything but
            NumPy arrays, scalars, dtypes and builtin containers.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open("rb") as f:
        return _load(f, str(path))


def loads_safe(data: bytes, source: str = "<bytes>") -> Any:
    """:func:`load_pickle` for a pickle held in memory."""
    return _load(io.BytesIO(data), source)


__all__ = ["ALLOWED_GLOBALS", "RestrictedUnpickler", "load_pickle", "loads_safe"]
