"""Mutation testing of one module with cosmic-ray: how many one-line mistakes do `pgexact verify` and the tests kill?

Run on one module at a time (install the ``mutation`` extra first, ``pip install -e .[mutation]``)::

    python benchmarks/mutation.py pgexact/exact/evaluation.py --tests tests/test_exact.py --sample 40

The repository is copied to a temporary directory and mutated there (never the working tree); each
mutant of the module (cosmic-ray's arithmetic, comparison, boolean, number and unary operators, with
the bitwise/shift/power/modulo replacements filtered out as implausible) is run against

* ``pgexact verify`` (``--instances`` random instances per theorem, default 3), and
* ``pytest -x -q`` on the ``--tests`` given (default: none; the whole suite takes minutes per mutant),

and the script prints each score (killed / run) and the survivors (operator, line, and the mutated
line) for triage. ``--sample N`` runs a random sample of N mutants (seeded by ``--seed``): the full
set of a core module is several hundred, at a few seconds each for verify. Exit status 0 whatever
the scores: this measures, it does not gate.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: cosmic-ray operators left out: mistakes nobody makes in numerical Python (bit operations, shifts, powers and
#: modulo in place of arithmetic), and exception/decorator rewrites that only test error paths.
EXCLUDED_OPERATORS = [
    r"core/ReplaceBinaryOperator_.*_(BitOr|BitAnd|BitXor|LShift|RShift|Mod|FloorDiv|Pow)$",
    r"core/ReplaceBinaryOperator_(BitOr|BitAnd|BitXor|LShift|RShift|Mod|FloorDiv|Pow)_.*",
    r"core/ReplaceAndWithOr|core/ReplaceOrWithAnd",  # kept below via comparisons; too many trivial guards
    r"core/ExceptionReplacer",
    r"core/RemoveDecorator",
    r"core/ReplaceComparisonOperator_.*_(Is|IsNot|In|NotIn)$",
    r"core/ReplaceComparisonOperator_(Is|IsNot|In|NotIn)_.*",
]


def _config(module: str, command: str, timeout: float) -> str:
    excluded = ", ".join(repr(x) for x in EXCLUDED_OPERATORS)
    return (
        "[cosmic-ray]\n"
        f"module-path = {module!r}\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {command!r}\n\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n"
    )


def _sample(session: Path, n: int | None, seed: int) -> int:
    """Mark all but a random sample of n pending mutants as skipped; return the number left to run."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        # sorted by what the mutant is (not by cosmic-ray's random job ids): the same seed samples the same
        # mutants in every session, so the verify and test scores are paired
        items = sorted(db.pending_work_items, key=lambda item: (
            item.mutations[0].operator_name, tuple(item.mutations[0].start_pos), item.mutations[0].occurrence))
        pending = [item.job_id for item in items]
        if n is not None and n < len(pending):
            keep = set(random.Random(seed).sample(pending, n))
            for job in pending:
                if job not in keep:
                    db.set_result(job, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
            return n
        return len(pending)


def _results(session: Path) -> tuple[int, int, list[str]]:
    """(killed, run, survivors described) of a finished session."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    killed = run = 0
    survivors = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome != WorkerOutcome.NORMAL:
                continue
            run += 1
            if result.test_outcome == TestOutcome.KILLED:
                killed += 1
                continue
            spec = item.mutations[0]
            changed = [ln[1:] for ln in (result.diff or "").splitlines() if ln.startswith("+") and not ln.startswith("+++")]
            survivors.append(f"{spec.operator_name} line {spec.start_pos[0]}: {changed[0].strip() if changed else '?'}")
    return killed, run, survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module", help="path of the module to mutate, relative to the repository, e.g. pgexact/exact/evaluation.py")
    parser.add_argument("--tests", nargs="*", default=[], help="pytest targets run against each mutant (default: none)")
    parser.add_argument("--instances", type=int, default=3, help="instances per theorem for pgexact verify (default 3)")
    parser.add_argument("--sample", type=int, default=None, help="run a random sample of this many mutants")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant and check (default 300)")
    args = parser.parse_args(argv)
    if not (ROOT / args.module).is_file():
        parser.error(f"module {args.module!r} is not a file of the repository {ROOT}")
    try:
        import cosmic_ray  # noqa: F401
    except ImportError:
        parser.error("cosmic-ray is not installed: pip install -e .[mutation]")
    bindir = Path(sys.executable).parent
    checks = {"verify": f"{sys.executable} -m pgexact verify --instances {args.instances} --json"}
    if args.tests:
        checks["tests"] = f"{sys.executable} -m pytest -x -q -p no:cacheprovider " + " ".join(args.tests)
    with tempfile.TemporaryDirectory(prefix="pgexact-mutation-") as tmp:
        work = Path(tmp) / "repo"
        shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "figures", "docs"))
        env = dict(os.environ, PYTHONPATH=str(work), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1")
        for name, command in checks.items():
            config, session = work / f"mutation-{name}.toml", work / f"mutation-{name}.sqlite"
            config.write_text(_config(args.module, command, args.timeout))
            subprocess.run([str(bindir / "cosmic-ray"), "init", str(config), str(session)], cwd=work, env=env, check=True)
            subprocess.run([str(bindir / "cr-filter-operators"), str(session), str(config)], cwd=work, env=env, check=True)
            n = _sample(session, args.sample, args.seed)
            print(f"{name}: running {n} mutants of {args.module} ...", flush=True)
            subprocess.run([str(bindir / "cosmic-ray"), "exec", str(config), str(session)], cwd=work, env=env, check=True)
            killed, run, survivors = _results(session)
            print(f"{name}: killed {killed} of {run} mutants ({100.0 * killed / max(run, 1):.0f}%)")
            for s in survivors:
                print(f"  survived: {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
