"""Plausible one-line mistakes across the library: how many do `pgexact verify` and the tests kill?

Where ``benchmarks/mutation.py`` lets cosmic-ray replace every operator of one module (most of its
mutants are equivalent or touch messages), this script applies a written catalogue of mistakes a
person could make while writing the code -- a dropped gamma, a swapped KL, an off-by-one, a
transposed matrix, a sign, a missing factor -- one at a time, to a copy of the repository, and runs
against each

* ``pgexact verify`` (the default run, exactly what a user types), and
* ``pytest -x -q`` on the test files the catalogue entry names (a lower bound on what the whole suite
  kills: if those files fail, the suite fails),

then prints, per mistake, which of the two killed it, and the two scores. The catalogue lives in
``benchmarks/mistakes/`` (one module per area, each a list ``MISTAKES`` of :class:`Mistake`);
``--area`` picks some of them, ``--only`` one mistake by id.

Run it with the ``test`` extra installed (the adapters' mistakes need torch and jax)::

    python benchmarks/plausible_mistakes.py                 # everything (about 1 min per mistake)
    python benchmarks/plausible_mistakes.py --area exact --no-tests
    python benchmarks/plausible_mistakes.py --only exact-visitation-drop-gamma

Every entry's ``old`` text must occur exactly once in its file (checked before anything runs), so a
refactoring that moves the code makes the catalogue fail loudly instead of measuring nothing. Exit
status 0 whatever the scores: this measures, it does not gate.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from mistakes import Mistake  # noqa: E402
from tqdm import tqdm  # noqa: E402


def catalogue(areas: list[str] | None = None) -> list[Mistake]:
    """Every mistake of the chosen areas (all areas when None), checked for applicability."""
    import mistakes

    found: list[Mistake] = []
    for info in sorted(pkgutil.iter_modules(mistakes.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or (areas and info.name not in areas):
            continue
        module = importlib.import_module(f"mistakes.{info.name}")
        found.extend(module.MISTAKES)
    ids = [m.id for m in found]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise SystemExit(f"duplicate mistake ids: {duplicated}")
    for m in found:
        text = (ROOT / m.path).read_text()
        count = text.count(m.old)
        if count != 1:
            raise SystemExit(f"mistake {m.id!r}: its old text occurs {count} times in {m.path} (must be once)")
        if m.old == m.new:
            raise SystemExit(f"mistake {m.id!r} changes nothing")
    return found


@dataclass
class Result:
    mistake: Mistake
    verify: str  # "killed", "survived", "timeout", or "-" when not run
    tests: str
    verify_detail: str
    seconds: float


def _run(command: list[str], cwd: Path, env: dict, timeout: float) -> tuple[str, str, str]:
    """(outcome, stdout, stderr): "killed" when the command fails, "survived" when it passes, or "timeout"."""
    try:
        done = subprocess.run(command, cwd=cwd, env=env, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return "timeout", "", ""
    return ("survived" if done.returncode == 0 else "killed"), done.stdout, done.stderr


def _failed_theorems(stdout: str, stderr: str) -> str:
    """The ids of the theorems that failed, from ``verify --json``'s list (else the last line of stderr: a crash)."""
    try:
        rows = json.loads(stdout)
    except ValueError:
        lines = stderr.strip().splitlines()
        return lines[-1][:120] if lines else ""
    failed = [r["id"] for r in rows if not r["passed"]]
    return ", ".join(failed[:4]) + (f" (+{len(failed) - 4})" if len(failed) > 4 else "")


def run(found: list[Mistake], *, verify: bool, tests: bool, timeout: float) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="pgexact-mistakes-") as tmp:
        work = Path(tmp) / "repo"
        shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "docs", "build"))
        env = dict(os.environ, PYTHONPATH=str(work), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        for m in tqdm(found, desc="mistakes", unit="mistake"):
            target = work / m.path
            original = target.read_text()
            target.write_text(original.replace(m.old, m.new))
            t0 = time.perf_counter()
            try:
                v, detail = ("-", "")
                if verify:
                    v, out, err = _run([sys.executable, "-m", "pgexact", "verify", "--json"], work, env, timeout)
                    detail = _failed_theorems(out, err) if v == "killed" else ""
                t = "-"
                if tests and m.tests:
                    t, _, _ = _run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
                                   work, env, timeout)
            finally:
                target.write_text(original)
            results.append(Result(m, v, t, detail, time.perf_counter() - t0))
    return results


def report(results: list[Result]) -> str:
    lines = [f"{'mistake':44s} {'verify':9s} {'tests':9s} caught by"]
    for r in results:
        lines.append(f"{r.mistake.id:44s} {r.verify:9s} {r.tests:9s} {r.verify_detail}")
    for name in ("verify", "tests"):
        ran = [getattr(r, name) for r in results if getattr(r, name) != "-"]
        killed = sum(x in ("killed", "timeout") for x in ran)
        if ran:
            lines.append(f"{name}: killed {killed} of {len(ran)} ({100.0 * killed / len(ran):.0f}%)")
    survivors = [r.mistake for r in results if r.verify == "survived" or r.tests == "survived"]
    if survivors:
        lines.append("survivors:")
        lines += [f"  {m.id} ({m.path}): {m.why}" for m in survivors]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--area", nargs="*", default=None, help="catalogue modules to run (default: all)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these mistake ids")
    parser.add_argument("--no-verify", action="store_true", help="skip pgexact verify")
    parser.add_argument("--no-tests", action="store_true", help="skip the entries' test files")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per check (a timeout counts as killed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    found = catalogue(args.area)
    if args.only:
        unknown = set(args.only) - {m.id for m in found}
        if unknown:
            parser.error(f"unknown mistake ids: {sorted(unknown)}")
        found = [m for m in found if m.id in args.only]
    if args.list:
        for m in found:
            print(f"{m.id:44s} {m.path}: {m.why}")
        return 0
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        results = run(found, verify=not args.no_verify, tests=not args.no_tests, timeout=args.timeout)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps([
            {"id": r.mistake.id, "path": r.mistake.path, "why": r.mistake.why, "verify": r.verify,
             "tests": r.tests, "caught_by": r.verify_detail, "seconds": round(r.seconds, 1)} for r in results],
            indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
