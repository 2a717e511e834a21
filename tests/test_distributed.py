"""Gathered negatives under data parallelism: two gloo processes on the CPU must give the
loss and gradients of one process holding the whole batch."""

import torch
from tests.gloo import half, two_processes

from mmfactor.losses import InfoNCELoss, SupConLoss


def _worker(rank: int, a, b, labels):
    rows = half(rank, a.shape[0])
    a_r = a[rows].clone().requires_grad_(True)
    b_r = b[rows].clone().requires_grad_(True)
    loss = InfoNCELoss(0.2)(a_r, b_r)
    loss.backward()
    views = torch.stack([a[rows], b[rows]], 1).clone().requires_grad_(True)
    sup = SupConLoss(0.2)(views, labels[rows])
    sup.backward()
    return loss.detach(), a_r.grad, b_r.grad, sup.detach(), views.grad


def test_two_processes_equal_one():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    labels = torch.tensor([0, 1, 1, 0, 2, 2, 0, 1])
    out = two_processes(_worker, a, b, labels)

    a1, b1 = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    full = InfoNCELoss(0.2)(a1, b1)
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


def _batch_statistics_worker(rank: int, x, img, w):
    from mmfactor.augment import default_augmentation
    from mmfactor.data.dataset import ModalitySpec
    from mmfactor.distributed import GlobalBatchNorm1d, GlobalBatchNorm2d
    from mmfactor.losses import CMD, SoftOrthogonality

    rows = half(rank, x.shape[0])
    x_r = x[rows].clone().requires_grad_(True)
    img_r = img[rows].clone().requires_grad_(True)
    torch.manual_seed(0)
    bn1, bn2 = GlobalBatchNorm1d(x.shape[1]), GlobalBatchNorm2d(img.shape[1])
    # Each rank's loss is a sum over its own rows: their sum is the one-process loss.
    bn_loss = (bn1(x_r) * w[rows]).sum() + bn2(img_r).pow(3).sum()
    bn_loss.backward()
    a = x[rows].clone().requires_grad_(True)
    stats = CMD()(a[:, :3], a[:, 3:]) + SoftOrthogonality()(a[:, :3], a[:, 3:])
    stats.backward()
    torch.default_generator.manual_seed(7)
    aug, _ = default_augmentation(ModalitySpec("v", "vector", (x.shape[1],)))(x[rows])
    return {
        "bn_x_grad": x_r.grad,
        "bn_img_grad": img_r.grad,
        "bn1_state": bn1.state_dict(),
        "bn2_state": bn2.state_dict(),
        "bn1_weight_grad": bn1.weight.grad,
        "stats": stats.detach(),
        "stats_grad": a.grad,
        "augmented": aug,
    }


def test_batch_statistics_and_augmentations_of_two_processes_equal_one():
    """Batch norm (statistics, gradients, running statistics), CMD, soft orthogonality and
    augmentations (random numbers and the noise's feature scale) on two gloo processes equal
    one process with the whole batch."""
    from mmfactor.augment import default_augmentation
    from mmfactor.data.dataset import ModalitySpec
    from mmfactor.losses import CMD, SoftOrthogonality

    g = torch.Generator().manual_seed(1)
    x, img = 3 * torch.randn(16, 6, generator=g) + 1, torch.randn(16, 2, 4, 4, generator=g)
    w = torch.randn(16, 6, generator=g)
    out = two_processes(_batch_statistics_worker, x, img, w)

    x1, img1 = x.clone().requires_grad_(True), img.clone().requires_grad_(True)
    torch.manual_seed(0)
    bn1, bn2 = torch.nn.BatchNorm1d(6), torch.nn.BatchNorm2d(2)
    ((bn1(x1) * w).sum() + bn2(img1).pow(3).sum()).backward()
    a = x.clone().requires_grad_(True)
    stats = CMD()(a[:, :3], a[:, 3:]) + SoftOrthogonality()(a[:, :3], a[:, 3:])
    stats.backward()
    torch.default_generator.manual_seed(7)
    augmented, _ = default_augmentation(ModalitySpec("v", "vector", (6,)))(x)

    def both(key):
        return torch.cat([out[0][key], out[1][key]])

    assert torch.allclose(both("bn_x_grad"), x1.grad, atol=1e-5)
    assert torch.allclose(both("bn_img_grad"), img1.grad, atol=1e-5)
    # Two processes' partial sums vs one sum (float32): the rounding (1e-7 measured) scales with
    # the O(1) terms, not with an entry (one is 0.106); atol covers it, rtol alone barely did.
    assert torch.allclose(
        out[0]["bn1_weight_grad"] + out[1]["bn1_weight_grad"], bn1.weight.grad, atol=1e-6
    )
    for key, bn in (("bn1_state", bn1), ("bn2_state", bn2)):
        for name, value in bn.state_dict().items():
            assert torch.allclose(out[0][key][name].float(), value.float(), atol=1e-6), name
    assert torch.allclose(out[0]["stats"], stats, atol=1e-6)
    assert torch.allclose(out[1]["stats"], stats, atol=1e-6)  # the global value on every rank
    assert torch.allclose(both("stats_grad") / 2, a.grad, atol=1e-6)
    assert torch.allclose(both("augmented"), augmented, atol=1e-6)
    # exact: each rank's rows get their own random numbers
    assert not torch.equal(out[0]["augmented"], out[1]["augmented"])


COMM_SPECS = {m: ("vector", (10,)) for m in ("x1", "x2")}


def _comm_step(x: dict, rows: slice) -> tuple:
    """One CoMM loss and backward on ``rows`` of ``x`` in float64 (same weights and random
    numbers everywhere): the loss, the parameter gradients and the buffers."""
    import mmfactor as mf
    from mmfactor.data.batching import Batch
    from mmfactor.data.dataset import ModalitySpec

    specs = {m: ModalitySpec(m, kind, shape) for m, (kind, shape) in COMM_SPECS.items()}
    torch.manual_seed(0)
    model = mf.methods.build(
        "comm", specs, embed_dim=16, width=16, heads=2, proj_hidden=32, proj_dim=8
    ).double()
    batch = Batch(
        x={m: v[rows] for m, v in x.items()},
        present={m: torch.ones(v[rows].shape[0], dtype=torch.bool) for m, v in x.items()},
    )
    torch.manual_seed(5)
    loss = model.loss(batch).total
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads, dict(model.named_buffers())


def _comm_worker(rank: int, x: dict) -> tuple:
    return _comm_step(x, half(rank, 16))


def test_comm_step_of_two_processes_equals_one():
    """CoMM's step (augmentations, fusion, the head's batch norm over both processes' rows,
    NT-Xent with gathered negatives), in float64: two gloo processes give one process's loss,
    gradients (averaged, as data parallelism does) and batch-norm statistics."""
    g = torch.Generator().manual_seed(1)
    x = {m: torch.randn(16, 10, generator=g, dtype=torch.float64) for m in COMM_SPECS}
    out = two_processes(_comm_worker, x)
    loss, grads, buffers = _comm_step(x, slice(0, 16))
    torch.testing.assert_close((out[0][0] + out[1][0]) / 2, loss, rtol=0, atol=1e-12)
    assert grads.keys() == out[0][1].keys()
    for name, grad in grads.items():
        torch.testing.assert_close(
            (out[0][1][name] + out[1][1][name]) / 2, grad, rtol=0, atol=1e-12
        )
    for name, value in buffers.items():
        torch.testing.assert_close(out[0][2][name], value, rtol=0, atol=1e-12)
