"""CPU time per batch of each installed conformance driver, against the plain-numpy reference driver.

Each driver runs its library's own collection, buffer, advantage and loss code for ``--batches``
batches of 16 envs x 32 steps on the audits' default problem (3x3 gridworld, slip 0.2, gamma 0.8,
time limit 10); the reference is :func:`pgexact.conformance.reference.collect` with the driver's
preset convention, timed in the same run, interleaved, medians over ``--rounds`` rounds, CPU time
of this process (``time.process_time``), BLAS threads limited to 1. Also prints the projected CPU
time of a default audit (300 batches) per driver. Library import time is excluded (one warm-up run).

Usage: ``python benchmarks/bench_drivers.py [--batches 10] [--rounds 3] [driver ...]``
(for instance ``torchrl-ppo``, which needs the ``conformance-torchrl`` extra).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import interleaved_ratio  # noqa: E402

from pgexact import evaluate  # noqa: E402
from pgexact.conformance import PRESETS  # noqa: E402
from pgexact.conformance import reference  # noqa: E402
from pgexact.conformance.audit import default_logits, default_mdp  # noqa: E402
from pgexact.conformance.drivers import available, get_driver  # noqa: E402
from pgexact.policies import softmax_rows  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("drivers", nargs="*", help="default: every installed driver")
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    mdp = default_mdp()
    logits = default_logits(mdp.n_states, mdp.n_actions)
    values = evaluate(mdp, softmax_rows(logits)).V
    size = dict(time_limit=10, n_envs=16, n_steps=32)
    names = args.drivers or available()
    print(f"{'driver':<14} {'library':<28} {'s/batch':>9} {'ref s/batch':>12} {'ratio':>7} {'300-batch audit':>16}")
    with threadpool_limits(1):
        for name in names:
            drv = get_driver(name)
            run = drv.collect(mdp, logits, n_batches=1, seed=0, **size)  # warm-up: imports, compilation
            conv = PRESETS[name].replace(gamma=mdp.gamma, lam=run.config["lam"], **size)
            subject = lambda: drv.collect(mdp, logits, n_batches=args.batches, seed=1, **size)  # noqa: E731
            ref = lambda: reference.collect(mdp, logits, values, n_batches=args.batches, seed=1,  # noqa: E731
                                            convention=conv, **size)
            ratio, ts, tr = interleaved_ratio(subject, ref, args.rounds)
            per, per_ref = ts / args.batches, tr / args.batches
            print(f"{name:<14} {run.library + ' ' + run.version[:12]:<28} {per:9.3f} {per_ref:12.4f} "
                  f"{ratio:7.1f} {300 * per:14.0f} s", flush=True)


if __name__ == "__main__":
    main()
