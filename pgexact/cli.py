"""The ``pgexact`` command line: ``verify``, ``errata``, ``figures``."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from typing import Sequence

import numpy as np

__all__ = ["main", "run_verify"]


def run_verify(instances: int, seed: int, only: str | None, progress: bool = True) -> list[dict]:
    """Run every registered theorem on ``instances`` random instances; return one row per theorem.

    Instances of theorem k come from ``SeedSequence(seed).spawn(n_theorems)[k]``, so a row is
    reproducible on its own (``--only``) and independent of the others.
    """
    from tqdm import tqdm

    from .theorems import all_theorems

    theorems = all_theorems()
    if only is not None:
        selected = [t for t in theorems if fnmatch.fnmatch(t.id, only) or only in t.id]
        if not selected:
            valid = ", ".join(t.id for t in theorems)
            raise SystemExit(f"pgexact verify: no theorem matches --only {only!r}; valid ids: {valid}")
    else:
        selected = theorems
    children = np.random.SeedSequence(seed).spawn(len(theorems))
    seeds = {t.id: children[i] for i, t in enumerate(theorems)}
    rows = []
    bar = tqdm(selected, desc="verify", unit="thm", disable=not progress, file=sys.stderr)
    for thm in bar:
        bar.set_postfix_str(thm.id)
        rng = np.random.default_rng(seeds[thm.id])
        start = time.perf_counter()
        worst = 0.0
        error = None
        for _ in range(instances):
            try:
                res = thm.check(rng)
            except Exception as exc:  # a crash is a failure, reported with its message
                error = f"{type(exc).__name__}: {exc}"
                res = float("inf")
            if not res <= worst:  # larger, or NaN/inf: NaN residuals count as failures
                worst = res if np.isfinite(res) else float("inf")
            if not np.isfinite(worst):
                break
        passed = bool(np.isfinite(worst) and worst <= thm.tolerance)
        rows.append(
            {
                "id": thm.id,
                "source": thm.source,
                "instances": instances,
                "max_residual": worst,
                "tolerance": thm.tolerance,
                "passed": passed,
                "seconds": time.perf_counter() - start,
                **({"error": error} if error else {}),
            }
        )
    return rows


def _print_table(rows: list[dict]) -> None:
    headers = ("theorem", "source", "instances", "max residual", "tolerance", "status")
    table = [
        (
            r["id"],
            r["source"] if len(r["source"]) <= 48 else r["source"][:45] + "...",
            str(r["instances"]),
            f"{r['max_residual']:.2e}",
            f"{r['tolerance']:.2g}",
            "pass" if r["passed"] else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    n_fail = sum(not r["passed"] for r in rows)
    print(f"\n{len(rows) - n_fail} passed, {n_fail} failed")
    for r in rows:
        if "error" in r:
            print(f"  {r['id']}: {r['error']}")


def _cmd_verify(args: argparse.Namespace) -> int:
    if args.instances < 1:
        raise SystemExit("pgexact verify: --instances must be a positive integer")
    rows = run_verify(args.instances, args.seed, args.only, progress=not args.json)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        _print_table(rows)
    return 0 if all(r["passed"] for r in rows) else 1


def _cmd_errata(args: argparse.Namespace) -> int:
    from .errata import format_errata

    print(format_errata())
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    from .figures import render

    names = None if args.only is None else [n for n in args.only.split(",") if n]
    try:
        paths = render(names=names, out_dir=args.out, fmt=args.format, progress=True)
    except (ValueError, OSError) as exc:
        print(f"pgexact figures: {exc}", file=sys.stderr)
        return 2
    from .figures import captions

    for p in paths:
        print(p)
    print()
    print(captions(p.stem for p in paths))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgexact", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check every registered theorem on random instances")
    v.add_argument("--instances", type=int, default=50, help="random instances per theorem (default 50)")
    v.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    v.add_argument("--only", default=None, help="run only theorems whose id matches this glob or substring")
    v.add_argument("--json", action="store_true", help="print the results as JSON")
    v.set_defaults(func=_cmd_verify)
    e = sub.add_parser("errata", help="list the errors of the course notes with numerical witnesses")
    e.set_defaults(func=_cmd_errata)
    f = sub.add_parser("figures", help="regenerate the textbook figures")
    f.add_argument("--out", default="figures", help="output directory (default: figures)")
    f.add_argument("--only", default=None, help="comma-separated figure names")
    f.add_argument("--format", default="png", choices=("png", "svg", "pdf"))
    f.set_defaults(func=_cmd_figures)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pgexact`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
