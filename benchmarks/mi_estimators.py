"""MI estimators on correlated Gaussians (d = 5, rho = 0.8, truth 2.554 nats) next to the
reference figures of ``spec/methods.md`` (torch-mist 0.2.17, same protocol: 1000 steps,
batch 128, hidden [128, 64]), and the speed of the concat critic against a naive tiled
MLP([a; b]) at B = 256 (forward + backward, ratio from this one run).

    python benchmarks/mi_estimators.py [--steps 1000] [--batch 128] [--n 20000]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from mmfactor.estimators import ConcatCritic, available, build, correlated_gaussians, estimate_mi

REFERENCE = {"smile": 2.389, "mine": 2.370, "infonce": 2.255, "nwj": 1.699}
REFERENCE_OTHERS = "torch-mist also: DoE 2.544, BA 2.505, TUBA 2.404 (not implemented here)"


def tiled(critic: ConcatCritic, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    n = a.shape[0]
    rows = torch.cat([a.repeat_interleave(n, 0), b.repeat(n, 1)], 1)  # (B^2, d_a + d_b)
    weight, bias = critic.first_layer()
    return critic.rest(F.linear(rows, weight, bias)).reshape(n, n)


def time_fb(fn, a: torch.Tensor, b: torch.Tensor, repeats: int) -> float:
    fn(a, b).sum().backward()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(a, b).sum().backward()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()

    d, rho = 5, 0.8
    a, b, truth = correlated_gaussians(args.n, d, rho)
    print(
        f"d={d} rho={rho} truth={truth:.3f} nats; {args.steps} steps, batch {args.batch}, "
        f"hidden [128, 64], concat critic, torch threads {torch.get_num_threads()}"
    )
    print(
        f"{'estimator':<10} {'kind':<6} {'estimate':>9} {'error':>8} {'seconds':>8} "
        f"{'torch-mist':>10}"
    )
    for name in available():
        t0 = time.perf_counter()
        est = estimate_mi(a, b, name, steps=args.steps, batch_size=args.batch, hidden=(128, 64))
        seconds = time.perf_counter() - t0
        kind = build(name, 1, 1, hidden=(1,)).kind
        ref = f"{REFERENCE[name]:.3f}" if name in REFERENCE else "-"
        print(f"{name:<10} {kind:<6} {est:9.3f} {est - truth:+8.3f} {seconds:8.1f} {ref:>10}")
    print(REFERENCE_OTHERS)

    torch.manual_seed(0)
    size = 256
    critic = ConcatCritic(d, d, hidden=(128, 64))
    x = torch.randn(size, d, requires_grad=True)
    y = torch.randn(size, d, requires_grad=True)
    assert torch.allclose(critic(x, y), tiled(critic, x, y), atol=1e-5)
    fast = time_fb(critic, x, y, repeats=10)
    slow = time_fb(lambda p, q: tiled(critic, p, q), x, y, repeats=10)
    print(
        f"concat critic, B={size}, hidden [128, 64], forward+backward: decomposed "
        f"{fast * 1e3:.1f} ms, tiled {slow * 1e3:.1f} ms, speed-up x{slow / fast:.2f}"
    )


if __name__ == "__main__":
    main()
