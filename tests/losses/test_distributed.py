"""Gathered negatives under data parallelism: two gloo processes on the CPU must give the
loss and gradients of one process holding the whole batch."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmfactor.losses import InfoNCE, SupConLoss


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, a, b, labels, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        half = a.shape[0] // 2
        rows = slice(rank * half, (rank + 1) * half)
        a_r = a[rows].clone().requires_grad_(True)
        b_r = b[rows].clone().requires_grad_(True)
        loss = InfoNCE(0.2)(a_r, b_r)
        loss.backward()
        views = torch.stack([a[rows], b[rows]], 1).clone().requires_grad_(True)
        sup = SupConLoss(0.2)(views, labels[rows])
        sup.backward()
        out[rank] = (loss.detach(), a_r.grad, b_r.grad, sup.detach(), views.grad)
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    labels = torch.tensor([0, 1, 1, 0, 2, 2, 0, 1])
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(_free_port(), a, b, labels, out), nprocs=2, join=True)

    a1, b1 = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    full = InfoNCE(0.2)(a1, b1)
    full.backward()
    views = torch.stack([a, b], 1).clone().requires_grad_(True)
    full_sup = SupConLoss(0.2)(views, labels)
    full_sup.backward()

    # Each rank's loss is the mean over its rows; data-parallel averaging of gradients
    # recovers the full-batch gradient, so gathered gradients are twice the full ones.
    assert torch.allclose((out[0][0] + out[1][0]) / 2, full, atol=1e-6)
    assert torch.allclose(torch.cat([out[0][1], out[1][1]]) / 2, a1.grad, atol=1e-6)
    assert torch.allclose(torch.cat([out[0][2], out[1][2]]) / 2, b1.grad, atol=1e-6)
    assert torch.allclose((out[0][3] + out[1][3]) / 2, full_sup, atol=1e-6)
    assert torch.allclose(torch.cat([out[0][4], out[1][4]]) / 2, views.grad, atol=1e-6)
