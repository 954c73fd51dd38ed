"""Exact second order speed: a Hessian-vector product and the dense Hessian against one J + grad J.

1. Hessian-vector product (``pgexact.hessian_vector_product``) against ``exact.value_and_gradient``
   on a dense random MDP, S = 2000, A = 8, gamma = 0.99, TabularSoftmax (target <= 3).
2. Dense Hessian (``pgexact.hessian``) with 800 parameters against ``exact.value_and_gradient``
   on the same problem: TabularSoftmax on S = 100, A = 8 (800 parameters), and LinearSoftmax
   with 800 features on S = 2000, A = 8 (target <= 50 each).
Subject and reference alternate (interleaved); each ratio is the median over ``--repeat``
rounds of the per-round ratio; CPU time (``time.process_time``). BLAS limited to one thread
with threadpoolctl (the machine is shared; both sides get the same).

Usage: python benchmarks/bench_hessian.py [--repeat 5]
"""

from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

import pgexact as pg
from pgexact.mdps import random_mdp

from _timing import interleaved_ratio  # benchmarks/_timing.py (the script's own folder)


def _row(what: str, t: float, ratio: float, target: str) -> None:
    print(f"{what:58s} {t:9.4f} {ratio:7.2f}   target {target}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    with threadpool_limits(1):
        big = random_mdp(2000, 8, gamma=0.99, seed=0)
        tab = pg.TabularSoftmax(2000, 8)
        theta = rng.standard_normal(tab.n_params)
        v = rng.standard_normal(tab.n_params)

        def vg() -> None:
            pg.exact.value_and_gradient(big, tab, theta)

        def hvp() -> None:
            pg.hessian_vector_product(big, tab, theta, v)

        vg(), hvp()
        r1, t1, t_ref1 = interleaved_ratio(hvp, vg, args.repeat)

        small = random_mdp(100, 8, gamma=0.99, seed=2)
        tab_s = pg.TabularSoftmax(100, 8)
        theta_s = rng.standard_normal(tab_s.n_params)
        n_calls = 20  # the small problem's J + grad J takes well under a millisecond

        def vg_s() -> None:
            pg.exact.value_and_gradient(small, tab_s, theta_s)

        def hess_s() -> None:
            pg.hessian(small, tab_s, theta_s)

        vg_s(), hess_s()
        r2, t2, t_ref2 = interleaved_ratio(hess_s, vg_s, args.repeat, n=n_calls, n_ref=n_calls)

        lin = pg.LinearSoftmax(rng.standard_normal((2000, 8, 800)) / np.sqrt(800))
        theta_l = rng.standard_normal(800)

        def vg_l() -> None:
            pg.exact.value_and_gradient(big, lin, theta_l)

        def hess_l() -> None:
            pg.hessian(big, lin, theta_l)

        vg_l(), hess_l()
        r3, t3, t_ref3 = interleaved_ratio(hess_l, vg_l, max(3, args.repeat // 2))

    print(f"median of {args.repeat} interleaved rounds, CPU seconds per call, BLAS 1 thread")
    print(f"{'computation':58s} {'seconds':>9s} {'ratio':>7s}")
    _row("J + grad J, dense S=2000 A=8 gamma=0.99, tabular", t_ref1, 1.0, "(reference)")
    _row("Hessian-vector product, same problem", t1, r1, "<= 3")
    _row("J + grad J, dense S=100 A=8, tabular (800 params)", t_ref2, 1.0, "(reference)")
    _row("dense Hessian 800 x 800, same problem", t2, r2, "<= 50")
    _row("J + grad J, dense S=2000 A=8, LinearSoftmax d=800", t_ref3, 1.0, "(reference)")
    _row("dense Hessian 800 x 800, same problem", t3, r3, "<= 50")


if __name__ == "__main__":
    main()
