"""Two gloo processes on the CPU for data-parallel tests: each runs ``worker(rank, *args)``
on its own half of a batch; the caller compares against one process with the whole batch."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, port: int, worker: Callable[..., Any], args: tuple, out: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        out[rank] = worker(rank, *args)
    finally:
        dist.destroy_process_group()


def two_processes(worker: Callable[..., Any], *args: Any) -> list[Any]:
    """``[worker(0, *args), worker(1, *args)]``, each run in its own gloo process;
    ``worker`` must be a module-level function (it is pickled)."""
    out = mp.Manager().dict()
    mp.spawn(_entry, args=(_free_port(), worker, args, out), nprocs=2, join=True)
    return [out[0], out[1]]


def half(rank: int, n: int) -> slice:
    """This rank's rows of a batch of ``n`` split in two."""
    return slice(rank * (n // 2), (rank + 1) * (n // 2))
