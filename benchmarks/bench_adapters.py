"""Exact J + grad J, and Hessian-vector products, of a neural policy through the PyTorch and JAX adapters.

Subjects, for a 2-layer MLP (64 hidden units, tanh) on a 100 x 100 sparse gridworld
(S = 10^4, gamma = 0.99):

- J + grad: ``pgexact.torch.expected_return(mdp, softmax(net(obs))).backward()`` (and the jitted
  ``jax.value_and_grad`` of ``pgexact.jax.expected_return``). Reference:
  ``pgexact.value_and_gradient`` for a tabular softmax policy with the same action probabilities
  on the same MDP, plus the network's own forward and backward pass (the same network, with a
  fixed random cotangent on its output). Target: ratio <= 2.
- Hessian-vector product :math:`\nabla^2_\theta J\, v` in the network's parameters: torch's
  double backward (``create_graph=True``) through ``pgexact.torch.expected_return`` (and the
  jitted ``jax.jvp`` of ``jax.grad`` through ``pgexact.jax.expected_return``). Reference: the
  closed-form Hessian-vector product in pi (``pgexact.exact.pi_hessian_vector_product``, an
  exact evaluation and two more solves) plus the network's own double backward of a fixed random
  linear functional of its output. Target: ratio <= 2.

Interleaved repetitions, medians; BLAS and torch threads limited to 1 (threadpoolctl).

    python benchmarks/bench_adapters.py [--reps 15]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

from pgexact import TabularSoftmax, value_and_gradient
from pgexact.exact import pi_hessian_vector_product
from pgexact.mdps import gridworld


def _timeit(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--side", type=int, default=100)
    args = ap.parse_args()
    n = args.side
    mdp = gridworld(n, n, gamma=0.99, slip=0.1, step_reward=-0.01, sparse=True)
    S = mdp.n_states
    s = np.arange(S)
    obs_np = np.stack([s // n, s % n], axis=1) / (n - 1)
    pol = TabularSoftmax(S, 4)
    rng = np.random.default_rng(0)
    cot = rng.normal(size=(S, 4))
    subjects, references = {}, {}

    try:
        import torch

        import pgexact.torch as pt

        torch.set_num_threads(1)
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64),
                                  torch.nn.Tanh(), torch.nn.Linear(64, 4)).double()
        obs = torch.tensor(obs_np)
        cot_t = torch.tensor(cot)
        with torch.no_grad():
            theta_t = torch.log_softmax(net(obs), -1).numpy().reshape(-1)

        def torch_subject():
            net.zero_grad()
            pt.expected_return(mdp, torch.softmax(net(obs), -1)).backward()

        def torch_reference():
            value_and_gradient(mdp, pol, theta_t)
            net.zero_grad()
            (torch.softmax(net(obs), -1) * cot_t).sum().backward()

        subjects["torch"], references["torch"] = torch_subject, torch_reference

        net_params = list(net.parameters())
        v_t = [torch.tensor(rng.normal(size=tuple(p.shape))) for p in net_params]
        with torch.no_grad():
            pi_t = torch.softmax(net(obs), -1).numpy()
        u = rng.normal(size=(S, 4))

        def double_backward(scalar):
            g = torch.autograd.grad(scalar, net_params, create_graph=True)
            return torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v_t)), net_params)

        def torch_hvp_subject():
            double_backward(pt.expected_return(mdp, torch.softmax(net(obs), -1)))

        def torch_hvp_reference():
            pi_hessian_vector_product(mdp, pi_t, u)
            double_backward((torch.softmax(net(obs), -1) * cot_t).sum())

        subjects["torch hvp"], references["torch hvp"] = torch_hvp_subject, torch_hvp_reference
    except ImportError:
        print("torch not installed: skipped")

    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        import pgexact.jax as pj

        k = rng.normal
        params = [(jnp.asarray(k(size=(2, 64)) / np.sqrt(2)), jnp.zeros(64)),
                  (jnp.asarray(k(size=(64, 64)) / 8), jnp.zeros(64)),
                  (jnp.asarray(k(size=(64, 4)) / 8), jnp.zeros(4))]
        obs_j = jnp.asarray(obs_np)

        def policy(p):
            h = obs_j
            for W, b in p[:-1]:
                h = jnp.tanh(h @ W + b)
            return jax.nn.softmax(h @ p[-1][0] + p[-1][1], -1)

        vg = jax.jit(jax.value_and_grad(lambda p: pj.expected_return(mdp, policy(p))))
        cot_j = jnp.asarray(cot)
        net_vg = jax.jit(jax.value_and_grad(lambda p: (policy(p) * cot_j).sum()))
        theta_j = np.log(np.asarray(policy(params))).reshape(-1)
        jax.block_until_ready(vg(params))
        jax.block_until_ready(net_vg(params))

        def jax_subject():
            jax.block_until_ready(vg(params))

        def jax_reference():
            value_and_gradient(mdp, pol, theta_j)
            jax.block_until_ready(net_vg(params))

        subjects["jax"], references["jax"] = jax_subject, jax_reference

        v_j = jax.tree_util.tree_map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params)
        pi_j = np.asarray(policy(params))
        u_j = rng.normal(size=(S, 4))
        hvp = jax.jit(lambda p, v: jax.jvp(jax.grad(lambda q: pj.expected_return(mdp, policy(q))), (p,), (v,))[1])
        net_hvp = jax.jit(lambda p, v: jax.jvp(jax.grad(lambda q: (policy(q) * cot_j).sum()), (p,), (v,))[1])
        jax.block_until_ready(hvp(params, v_j))
        jax.block_until_ready(net_hvp(params, v_j))

        def jax_hvp_subject():
            jax.block_until_ready(hvp(params, v_j))

        def jax_hvp_reference():
            pi_hessian_vector_product(mdp, pi_j, u_j)
            jax.block_until_ready(net_hvp(params, v_j))

        subjects["jax hvp"], references["jax hvp"] = jax_hvp_subject, jax_hvp_reference
    except ImportError:
        print("jax not installed: skipped")

    ctx = threadpool_limits(1) if threadpool_limits is not None else None
    try:
        for name in subjects:
            subjects[name]()  # warm up
            references[name]()
            ts, tr = [], []
            for _ in range(args.reps):
                ts.append(_timeit(subjects[name]))
                tr.append(_timeit(references[name]))
            ms, mr = np.median(ts), np.median(tr)
            if name.endswith("hvp"):
                what, ref = "adapter HVP", "pi_hessian_vector_product + network double backward"
            else:
                what, ref = "adapter J + grad", "value_and_gradient (tabular) + network fwd/bwd"
            print(f"{name:9s}: {what} {ms * 1e3:8.1f} ms | {ref} {mr * 1e3:8.1f} ms | "
                  f"ratio {ms / mr:.2f} (target <= 2); S = {S}, reps = {args.reps}")
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)


if __name__ == "__main__":
    main()
