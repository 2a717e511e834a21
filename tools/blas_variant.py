"""Print an OpenBLAS kernel (``OPENBLAS_CORETYPE``) this CPU can run other than the one
NumPy's OpenBLAS picks by itself, for rerunning tests under another kernel (``make
test-blas``): a test that compares floats computed on different shapes bit for bit can pass
under one kernel's blocking and fail under another's.

Prints nothing (exit 0) where no other kernel can be named: a non-x86 CPU, or a platform
without ``/proc/cpuinfo``.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from threadpoolctl import threadpool_info

# OpenBLAS's x86-64 kernels from newest to oldest, with the CPU flags each one needs.
KERNELS = {
    "SkylakeX": {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"},
    "Haswell": {"avx2", "fma"},
    "Sandybridge": {"avx"},
    "Nehalem": {"sse4_2"},
}


def cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_kernel() -> str:
    import numpy  # noqa: F401  (loads NumPy's OpenBLAS so threadpoolctl sees it)

    for lib in threadpool_info():
        if lib.get("internal_api") == "openblas":
            return str(lib.get("architecture", ""))
    return ""


def other_kernel() -> str:
    """The first kernel of Haswell, SkylakeX, Sandybridge, Nehalem that is not the one in use
    and that the CPU supports (Haswell's is the kernel that showed the fault in issue 25)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return ""
    flags, native = cpu_flags(), native_kernel().lower()
    order = ["Haswell", "SkylakeX", "Sandybridge", "Nehalem"]
    for name in order:
        if name.lower() != native and KERNELS[name] <= flags:
            return name
    return ""


if __name__ == "__main__":
    sys.stdout.write(other_kernel())
