"""CPU seconds per registered theorem of the default ``pgexact verify`` run (10 instances, seed 0).

Each selected theorem is run alone through :func:`pgexact.cli.run_verify` (the code path of the CLI,
without negative controls) ``--repeat`` times; the median CPU time (user + sys of this process,
``time.process_time``) is printed per theorem, with the total. BLAS is limited to one thread with
threadpoolctl; one warm-up run pays the imports first. A theorem's cost is what its instance generator
and its two computations take, so this is the figure to keep small for a verify that stays within a
few seconds of CPU time.

Usage: python benchmarks/verify_cpu_by_theorem.py [--repeat 3] [--instances 10] [PREFIX ...]
(default prefixes: ``convergence. baselines. average.``; ``""`` selects every theorem)
"""

from __future__ import annotations

import argparse
import statistics
import time

from threadpoolctl import threadpool_limits

from pgexact.cli import run_verify
from pgexact.theorems.registry import all_theorems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", default=["convergence.", "baselines.", "average."])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instances", type=int, default=10)
    args = parser.parse_args()
    ids = [t.id for t in all_theorems() if t.id.startswith(tuple(args.prefixes))]
    with threadpool_limits(1):
        run_verify(2, 0, None, progress=False, ids=ids)  # warm-up: imports and first calls
        total = 0.0
        for theorem_id in ids:
            times = []
            for _ in range(args.repeat):
                start = time.process_time()
                run_verify(args.instances, 0, None, progress=False, ids=[theorem_id])
                times.append(time.process_time() - start)
            total += statistics.median(times)
            print(f"{theorem_id:48s} {statistics.median(times):7.3f} s")
    print(f"{'total (' + str(len(ids)) + ' theorems)':48s} {total:7.3f} s")


if __name__ == "__main__":
    main()
