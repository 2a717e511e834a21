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
import math
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


# ----------------------------------------------------------------------------- size checks
# Some admitted calls could allocate without bound on a few bytes of pickle (bytearray(10**12),
# set(range(10**12)), an array built empty with 10**12 rows), and NumPy trusts an object
# array's pickled state (it reads as many list items as the shape claims, past the end of a
# shorter list: a crash). The unpickler hands out checked stand-ins for these.

_RECONSTRUCT: Any = np.ndarray.__reduce__(np.zeros(1))[0]


def _size(shape: Any) -> int:
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"an array shape must be a tuple of sizes, got {shape!r:.80}")
    return math.prod(shape)


class _Array(np.ndarray):
    """An array being unpickled: its state is checked before NumPy reads it. Loading ends
    by making it a plain ndarray again (:func:`_plain`)."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) in (4, 5):
            shape, dtype, items = state[-4], state[-3], state[-1]
            if isinstance(dtype, np.dtype) and dtype.hasobject:
                size = _size(shape)
                if not isinstance(items, list) or len(items) != size:
                    got = len(items) if isinstance(items, list) else type(items).__name__
                    raise ValueError(f"an object array of shape {shape} holds {got} items")
        super().__setstate__(state)


class _NdarrayType:
    """What ``numpy.ndarray`` unpickles to: an argument of ``_reconstruct`` only (calling
    it would allocate whatever shape the pickle gives)."""

    def __call__(self, *args: Any) -> None:
        raise ValueError("refusing a call of numpy.ndarray: NumPy pickles do not make one")


_NDARRAY = _NdarrayType()


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not _NDARRAY or _size(shape) != 0:
        raise ValueError(f"_reconstruct of shape {shape!r:.80}: NumPy starts from an empty array")
    return _RECONSTRUCT(_Array, shape, dtype)


def _of_stored_items(kind: type) -> Any:
    """``kind`` (bytearray, set, frozenset) built only from items the pickle holds, not from
    a size or a range."""

    def build(*args: Any) -> Any:
        if args and not isinstance(args[0], bytes | str | list | tuple | set | frozenset):
            raise ValueError(f"refusing {kind.__name__}({args[0]!r:.40}): only stored items")
        return kind(*args)

    return build


_CHECKED = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    **{
        (module, kind.__name__): _of_stored_items(kind)
        for module in ("builtins", "__builtin__")
        for kind in (bytearray, set, frozenset)
    },
}


def _plain(obj: Any, seen: dict[int, Any]) -> Any:
    """``obj`` with every :class:`_Array` in it made a plain ndarray (containers in place)."""
    if not isinstance(obj, dict | list | tuple | np.ndarray) or id(obj) in seen:
        return seen.get(id(obj), obj)
    seen[id(obj)] = obj
    if isinstance(obj, _Array):
        seen[id(obj)] = plain = obj.view(np.ndarray)
        if plain.dtype.hasobject:
            for i in np.ndindex(plain.shape):
                plain[i] = _plain(plain[i], seen)
        return plain
    if isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _plain(v, seen)
    elif isinstance(obj, list):
        obj[:] = [_plain(v, seen) for v in obj]
    elif isinstance(obj, tuple):
        seen[id(obj)] = obj = tuple(_plain(v, seen) for v in obj)
    return obj


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose :meth:`find_class` admits only :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        canonical = module.replace("numpy._core", "numpy.core", 1)
        if (canonical, name) not in ALLOWED_GLOBALS:
            what = f"{module}.{name}"
            raise InputError(
                f"{self.source}: refusing to load {what if what.isprintable() else repr(what)} "
                "from a pickle (only NumPy arrays, scalars, dtypes and builtin containers are "
                "allowed)"
            )
        if (canonical, name) in _CHECKED:
            return _CHECKED[canonical, name]
        if canonical.startswith("numpy.core"):
            module = canonical.replace("numpy.core", _CORE, 1)
        return super().find_class(module, name)


def _load(file: Any, source: str) -> Any:
    try:
        return _plain(RestrictedUnpickler(file, source).load(), {})
    except InputError:
        raise
    except MemoryError:
        # A length field (of a frame, bytes, a string) larger than memory: Python allocates
        # it before reading, and such a file is truncated or corrupt. The calls that would
        # fill memory are checked above.
        raise InputError(
            f"{source}: not a readable pickle (truncated or corrupt?): it declares an object "
            "larger than memory"
        ) from None
    except RecursionError:
        raise InputError(f"{source}: not a readable pickle: nested too deeply") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        LookupError,  # SETITEM(S) of a corrupt stream applied to an array or a dict
        ArithmeticError,
    ) as exc:
        raise InputError(
            f"{source}: not a readable pickle (truncated or corrupt?): {' '.join(str(exc).split())}"
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
