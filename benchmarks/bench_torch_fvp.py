"""Fisher-vector product of a neural policy through ``pgexact.torch``: reverse mode only vs ``torch.func``.

``pgexact.torch.fisher_vector_product`` computes :math:`J_\theta v` as the derivative in w of
:math:`\langle J_\theta^\top w, v\rangle` (two reverse passes) and :math:`J_\theta^\top w` by
``torch.autograd.grad``. Reference, measured in the same run: the same product with
:math:`J_\theta v` by ``torch.func.jvp`` and :math:`J_\theta^\top w` by ``torch.func.vjp`` (the
formulation it replaces), around the same :func:`pgexact.exact.fisher_pi_metric` and occupancy.
Subject: a 2-layer MLP (64 hidden units, tanh) on a 100 x 100 sparse gridworld (S = 10^4,
gamma = 0.99). Also reported: the CPU of a first call in a fresh process (what a user's first
call, and ``pgexact verify``'s adapter theorem, pays in imports), for both formulations.

Interleaved repetitions, medians; BLAS and torch threads limited to 1 (threadpoolctl).

    python benchmarks/bench_torch_fvp.py [--reps 15] [--side 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

FIRST_CALL = """
import time, torch, numpy as np
import pgexact.torch as pt
from pgexact.exact import fisher_pi_metric, occupancy
from pgexact.mdps import gridworld
mdp = gridworld(3, 3, gamma=0.9)
phi = torch.eye(36, dtype=torch.float64).reshape(9, 4, 36)
f = lambda th: torch.softmax(phi @ th, dim=-1)
th, v = torch.zeros(36, dtype=torch.float64), torch.ones(36, dtype=torch.float64)
t = time.process_time()
if {func}:
    pi, u = torch.func.jvp(f, (th,), (v,))
    _, vjp = torch.func.vjp(f, th)
    p = pi.detach().numpy()
    w = fisher_pi_metric(p, occupancy(mdp, p), u.detach().numpy())
    vjp(torch.tensor(w))
else:
    pt.fisher_vector_product(mdp, f, th, v)
print(time.process_time() - t)
"""


def main() -> None:
    import torch

    import pgexact.torch as pt
    from pgexact.exact import fisher_pi_metric, occupancy
    from pgexact.mdps import gridworld

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--side", type=int, default=100)
    args = ap.parse_args()
    n = args.side
    mdp = gridworld(n, n, gamma=0.99, slip=0.1, step_reward=-0.01, sparse=True)
    S = mdp.n_states
    s = np.arange(S)
    obs = torch.tensor(np.stack([s // n, s % n], axis=1) / (n - 1))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.Tanh(), torch.nn.Linear(64, 4)).double()
    params = {k: p.detach() for k, p in net.named_parameters()}
    v = {k: torch.randn_like(p) for k, p in params.items()}

    def pi_fn(p):
        return torch.softmax(torch.func.functional_call(net, p, (obs,)), dim=-1)

    def subject():
        return pt.fisher_vector_product(mdp, pi_fn, params, v)

    def reference():
        pi, u = torch.func.jvp(pi_fn, (params,), (v,))
        _, vjp = torch.func.vjp(pi_fn, params)
        p = pi.detach().numpy()
        w = fisher_pi_metric(p, occupancy(mdp, p), u.detach().numpy())
        return vjp(torch.tensor(w))[0]

    a, b = subject(), reference()
    err = max(float((a[k] - b[k]).abs().max() / b[k].abs().max()) for k in a)
    print(f"relative difference of the two products: {err:.1e}")
    limits = threadpool_limits(1) if threadpool_limits else None
    torch.set_num_threads(1)
    times = {"reverse only": [], "torch.func": []}
    try:
        for _ in range(args.reps):
            for name, fn in (("reverse only", subject), ("torch.func", reference)):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    finally:
        if limits is not None:
            limits.unregister()
    med = {k: float(np.median(x)) for k, x in times.items()}
    print(f"S = {S}, MLP 2-64-4: reverse only {med['reverse only'] * 1e3:.1f} ms, torch.func "
          f"{med['torch.func'] * 1e3:.1f} ms, ratio {med['reverse only'] / med['torch.func']:.2f}")
    first = {}
    for name, func in (("reverse only", False), ("torch.func", True)):
        out = subprocess.run([sys.executable, "-c", FIRST_CALL.format(func=func)], capture_output=True, text=True,
                             check=True)
        first[name] = float(out.stdout.strip().splitlines()[-1])
    print(f"first call in a fresh process (CPU): reverse only {first['reverse only']:.3f} s, torch.func "
          f"{first['torch.func']:.3f} s")


if __name__ == "__main__":
    main()
