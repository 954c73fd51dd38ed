"""Re-measure the findings table of docs/conformance.md: every installed driver's audit at its defaults
and with its advantage normalization switched off, as the table lists them.

Each row runs ``audit(driver, n_batches=300, seed=0, **kwargs)`` on the audits' default problem and
prints the report (every candidate convention's exact and scale-free z, the thresholds, the consistent
conventions, the cosine to the exact gradient) and the CPU time it took.

Usage: ``python benchmarks/conformance_findings.py [driver ...]`` (needs the ``conformance`` extra).
"""

from __future__ import annotations

import argparse
import time

from threadpoolctl import threadpool_limits

from pgexact.conformance import audit
from pgexact.conformance.drivers import available

#: (driver, library keyword arguments) in the table's order.
ROWS: list[tuple[str, dict]] = [
    ("sb3-a2c", {}),
    ("sb3-ppo", {}),
    ("sb3-ppo", {"normalize_advantage": False}),
    ("cleanrl-ppo", {}),
    ("cleanrl-ppo", {"norm_adv": False}),
    ("rlax", {}),
    ("tianshou-ppo", {}),
    ("tianshou-ppo", {"advantage_normalization": False}),
    ("torchrl-ppo", {}),
    ("skrl-ppo", {}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("drivers", nargs="*", help="default: every installed driver")
    ap.add_argument("--batches", type=int, default=300)
    args = ap.parse_args()
    names = set(args.drivers or available())
    with threadpool_limits(1):
        for name, kwargs in ROWS:
            if name not in names:
                continue
            t0 = time.process_time()
            report = audit(name, n_batches=args.batches, seed=0, **kwargs)
            print(f"== {name} {kwargs or 'defaults'} ({time.process_time() - t0:.0f} s CPU)")
            print(report, flush=True)


if __name__ == "__main__":
    main()
