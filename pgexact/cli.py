"""The ``pgexact`` command line: ``verify``, ``errata``, ``figures``."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import time
from typing import Sequence

import numpy as np

__all__ = ["main", "run_verify"]


#: Default number of random instances per theorem: the default run stays within a few seconds
#: of CPU time (``--instances`` raises it; ``--controls`` adds the negative controls).
DEFAULT_INSTANCES = 10

#: Largest ``--instances`` accepted (about a day of CPU for the whole registry at ~10 ms per instance).
MAX_INSTANCES = 100_000

#: Smallest acceptable power of a negative control (fraction of instances on which it is rejected).
MIN_CONTROL_POWER = 0.9


class UsageError(Exception):
    """A command-line argument that makes no sense; reported on stderr with exit status 2."""


def _theorem_seed(seed: int, theorem_id: str) -> np.random.SeedSequence:
    """Seed of one theorem's instances: depends on the root seed and the id only (not on the registry's order)."""
    from .theorems.registry import theorem_seed

    return theorem_seed(seed, theorem_id)


def run_verify(
    instances: int,
    seed: int,
    only: str | None,
    progress: bool = True,
    controls: bool = False,
    ids: Sequence[str] | None = None,
) -> list[dict]:
    """Run every registered theorem on ``instances`` random instances; return one row per theorem.

    Instances of a theorem come from ``SeedSequence([seed, crc32(id)])``, so a row is reproducible
    on its own (``--only``) and does not change when theorems are added. With ``controls``, every
    negative control is evaluated on the same instances; its *power* is the fraction of instances
    on which its residual is at least ``CONTROL_FACTOR`` times the tolerance. ``ids`` (optional)
    selects theorems by exact id, in the registry's order.

    Returns
    -------
    list of dict
        Keys: ``id, statement, source, reference, kind, instances, max_residual, tolerance,
        tolerance_reason, tightest_ratio, discrimination, loose_reason, control_power, passed,
        seconds, cpu_seconds`` (and ``error`` when an instance raised). ``tightest_ratio`` is the
        largest ``lhs / rhs`` seen (inequalities; else None); ``discrimination`` its inverse, the
        largest factor by which the bound could be tightened with no instance failing (1.0 =
        binding; None without a ratio); ``loose_reason`` the theorem's statement of why its bound
        cannot come within a factor 2 ("" when it can); ``control_power`` maps each control's name to its power (None
        without ``controls``); ``seconds`` is wall-clock time, ``cpu_seconds`` the process's CPU
        time (user + sys, which a loaded machine does not inflate).
    """
    from .exact._krylov import _one_blas_thread
    from .theorems.registry import all_theorems

    theorems = all_theorems()
    if only is not None:
        selected = [t for t in theorems if fnmatch.fnmatch(t.id, only) or only in t.id]
        if not selected:
            valid = ", ".join(t.id for t in theorems)
            raise UsageError(f"no theorem matches --only {only!r}; valid ids: {valid}")
    else:
        selected = theorems
    if ids is not None:
        wanted = set(ids)
        unknown = wanted - {t.id for t in theorems}
        if unknown:
            raise UsageError(f"unknown theorem ids {sorted(unknown)}")
        selected = [t for t in selected if t.id in wanted]
    # instances are small (a few states, n <= 10): BLAS threads would only spin, doubling the CPU time
    with _one_blas_thread():
        return _verify_rows(selected, instances, seed, progress, controls)


def _verify_rows(selected: list, instances: int, seed: int, progress: bool, controls: bool) -> list[dict]:
    """The rows of :func:`run_verify` for the ``selected`` theorems."""
    from tqdm import tqdm

    from .theorems.registry import CONTROL_FACTOR, discrimination

    rows = []
    bar = tqdm(selected, desc="verify", unit="thm", disable=not progress, file=sys.stderr)
    for thm in bar:
        bar.set_postfix_str(thm.id)
        rng = np.random.default_rng(_theorem_seed(seed, thm.id))
        start, cpu_start = time.perf_counter(), time.process_time()
        worst = 0.0
        ratio: float | None = None
        rejected = np.zeros(len(thm.controls))
        error = None
        done = 0
        n = instances
        if instances == DEFAULT_INSTANCES and thm.default_instances is not None:
            n = min(instances, thm.default_instances)
        for _ in range(n):
            try:
                out, control_residuals = thm.run(thm.instance(rng), controls)
                res = out.residual
            except Exception as exc:  # a crash is a failure, reported with its message
                error = f"{type(exc).__name__}: {exc}"
                res, out, control_residuals = float("inf"), None, ()
            done += 1
            if not res <= worst:  # larger, or NaN/inf: NaN residuals count as failures
                worst = res if np.isfinite(res) else float("inf")
            if out is not None and out.ratio is not None and (ratio is None or out.ratio > ratio):
                ratio = out.ratio
            for k, c in enumerate(control_residuals):
                rejected[k] += c >= CONTROL_FACTOR * thm.tolerance  # NaN (a control that raised) never counts
            if not np.isfinite(worst):
                break
        passed = bool(np.isfinite(worst) and worst <= thm.tolerance)
        power = {c.name: float(rejected[k] / done) for k, c in enumerate(thm.controls)} if controls else None
        rows.append(
            {
                "id": thm.id,
                "statement": thm.statement,
                "source": thm.source,
                "reference": thm.reference,
                "kind": thm.kind,
                "instances": done,
                "max_residual": worst,
                "tolerance": thm.tolerance,
                "tolerance_reason": thm.tolerance_reason,
                "tightest_ratio": ratio,
                "discrimination": discrimination(ratio) if thm.kind == "inequality" else None,
                "loose_reason": thm.loose_reason,
                "control_power": power,
                "passed": passed,
                "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu_start,
                **({"error": error} if error else {}),
            }
        )
    return rows


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _power_cell(row: dict) -> str:
    power = row["control_power"]
    if power is None:
        return "-"
    if not power:
        return "none"
    return "/".join(f"{p:.2f}" for p in power.values())


def _discrimination_cell(row: dict) -> str:
    """The discrimination (1.00 = binding), marked ``(loose)`` when the theorem says why it cannot be below 2."""
    value = row.get("discrimination")
    if value is None:
        text = "-"
    elif not np.isfinite(value):
        text = "inf"
    else:
        text = f"{value:.2f}" if value < 100 else f"{value:.3g}"
    return text + (" (loose)" if row.get("loose_reason") else "")


def _print_table(rows: list[dict], controls: bool) -> None:
    headers = ["theorem", "reference", "instances", "max residual", "tolerance", "tightest ratio", "discrimination"]
    if controls:
        headers.append("control power")
    headers.append("status")
    table = []
    for r in rows:
        cells = [
            r["id"],
            _short(r["reference"] or "(none stated)", 56),
            str(r["instances"]),
            f"{r['max_residual']:.2e}",
            f"{r['tolerance']:.2g}",
            "-" if r["tightest_ratio"] is None else f"{r['tightest_ratio']:.4f}",
            _discrimination_cell(r),
        ]
        if controls:
            cells.append(_power_cell(r))
        cells.append("pass" if r["passed"] else "FAIL")
        table.append(cells)
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    loose = [r for r in rows if r.get("loose_reason")]
    if loose:
        print("\n(loose) bounds that no instance brings within a factor 2 of binding, and why:")
        for r in loose:
            print(f"  {r['id']}: {r['loose_reason']}")
    n_fail = sum(not r["passed"] for r in rows)
    print(f"\n{len(rows) - n_fail} passed, {n_fail} failed")
    for r in rows:
        if "error" in r:
            print(f"  {r['id']}: {r['error']}")
    if controls:
        weak = _weak_controls(rows)
        print(
            f"negative controls: a control is rejected on an instance when its residual is >= 100x the tolerance; "
            f"{len(weak)} control(s) below power {MIN_CONTROL_POWER:.2f}"
        )
        for r in rows:
            for name, p in (r["control_power"] or {}).items():
                flag = "" if p >= MIN_CONTROL_POWER else "   <-- weak"
                print(f"  {r['id']}: {name}: {p:.2f}{flag}")
            if r["control_power"] == {}:
                print(f"  {r['id']}: no negative control   <-- weak")


def _weak_controls(rows: list[dict]) -> list[tuple[str, str]]:
    weak = []
    for r in rows:
        power = r["control_power"]
        if power is None:
            continue
        if not power:
            weak.append((r["id"], ""))
        weak.extend((r["id"], n) for n, p in power.items() if p < MIN_CONTROL_POWER)
    return weak


def _json_safe(value):
    """Non-finite floats as the strings "inf", "-inf", "nan" (strict JSON has no such numbers)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def _cmd_verify(args: argparse.Namespace) -> int:
    if args.instances < 1:
        raise UsageError(f"--instances must be a positive integer, got {args.instances}")
    if args.instances > MAX_INSTANCES:
        raise UsageError(
            f"--instances {args.instances} would take days (~10 ms per instance and theorem); "
            f"at most {MAX_INSTANCES} are accepted"
        )
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.coverage:
        return _cmd_coverage(args)
    rows = run_verify(args.instances, args.seed, args.only, progress=not args.json, controls=args.controls)
    if args.json:
        json.dump([_json_safe(r) for r in rows], sys.stdout, indent=2, allow_nan=False)
        print()
    else:
        _print_table(rows, args.controls)
    ok = all(r["passed"] for r in rows) and not (args.controls and _weak_controls(rows))
    return 0 if ok else 1


def _cmd_coverage(args: argparse.Namespace) -> int:
    """Print, per public numerical function, the theorems that reach it; exit 1 on an uncovered function
    missing from the allow-list (``pgexact.theorems._coverage.ALLOWED_UNCOVERED``)."""
    from .exact._krylov import _one_blas_thread
    from .theorems._coverage import ALLOWED_UNCOVERED, measure
    from .theorems.registry import all_theorems

    theorems = all_theorems()
    if args.only is not None:
        theorems = [t for t in theorems if fnmatch.fnmatch(t.id, args.only) or args.only in t.id]
    with _one_blas_thread():
        cov = measure(theorems, instances=min(args.instances, 2), seed=args.seed)
    missing = [n for n in cov.uncovered if n not in ALLOWED_UNCOVERED]
    if args.json:
        json.dump({"reached": {k: list(v) for k, v in cov.reached.items()}, "uncovered": cov.uncovered,
                   "allowed": {n: ALLOWED_UNCOVERED[n] for n in cov.uncovered if n in ALLOWED_UNCOVERED},
                   "unexplained": missing}, sys.stdout, indent=2)
        print()
        return 1 if missing else 0
    width = max(len(n) for n in cov.reached)
    print(f"{'public function'.ljust(width)}  theorems that reach it")
    print(f"{'-' * width}  {'-' * 22}")
    for name, ids in cov.reached.items():
        if ids:
            cell = ", ".join(ids[:4]) + (f", ... ({len(ids)} theorems)" if len(ids) > 4 else "")
        else:
            cell = "UNCOVERED: " + ALLOWED_UNCOVERED[name] if name in ALLOWED_UNCOVERED else "UNCOVERED (no reason listed)"
        print(f"{name.ljust(width)}  {cell}")
    n = len(cov.reached)
    print(f"\n{n - len(cov.uncovered)} of {n} public functions reached by a theorem; {len(cov.uncovered)} uncovered "
          f"({len(cov.uncovered) - len(missing)} with a stated reason, {len(missing)} without)")
    return 1 if missing else 0


def _cmd_errata(args: argparse.Namespace) -> int:
    from .errata import format_errata

    print(format_errata())
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    from .exact._krylov import _one_blas_thread
    from .figures import render

    names = None if args.only is None else [n for n in args.only.split(",") if n]
    try:
        # the figures' problems are small: BLAS threads would only spin (about a quarter more CPU)
        with _one_blas_thread():
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
    v.add_argument(
        "--instances", type=int, default=DEFAULT_INSTANCES, help=f"random instances per theorem (default {DEFAULT_INSTANCES})"
    )
    v.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    v.add_argument("--only", default=None, help="run only theorems whose id matches this glob or substring")
    v.add_argument("--json", action="store_true", help="print the results as JSON")
    v.add_argument(
        "--controls",
        action="store_true",
        help="also run every negative control and report its power (fraction of instances on which it is "
        "rejected); exit 1 if a control's power is below 0.9",
    )
    v.add_argument(
        "--coverage",
        action="store_true",
        help="print, per public numerical function, the theorems that reach it (traced on 1-2 instances per "
        "theorem; the torch and jax adapters are imported and traced when installed); exit 1 if a function is "
        "reached by none and has no stated reason",
    )
    v.set_defaults(func=_cmd_verify)
    e = sub.add_parser("errata", help="list the errors of the course notes with numerical witnesses")
    e.set_defaults(func=_cmd_errata)
    f = sub.add_parser("figures", help="regenerate the textbook figures")
    f.add_argument("--out", default="figures", help="output directory (default: figures)")
    f.add_argument("--only", default=None, help="comma-separated figure names")
    f.add_argument("--format", default="png", choices=("png", "svg", "pdf"))
    f.set_defaults(func=_cmd_figures)
    a = sub.add_parser("audit", help="audit a library's policy-gradient update against exact expectations")
    a.add_argument("driver", help="driver name: 'reference' or a library driver (sb3-ppo, sb3-a2c, cleanrl-ppo, "
                   "torchrl-ppo, tianshou-ppo, skrl-ppo, rlax)")
    a.add_argument("--batches", type=int, default=200, help="recorded batches (default 200)")
    a.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    a.add_argument("--json", action="store_true", help="print the report as JSON")
    a.set_defaults(func=_cmd_audit)
    return parser


def _cmd_audit(args: argparse.Namespace) -> int:
    from .conformance import audit

    if args.batches < 20:
        raise UsageError(f"--batches must be at least 20 (the tests use 20 blocks), got {args.batches}")
    try:
        report = audit(args.driver, n_batches=args.batches, seed=args.seed)
    except (ImportError, ValueError) as exc:
        print(f"pgexact audit: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pgexact`` console script."""
    args = build_parser().parse_args(argv)  # argparse reports bad flags itself (stderr, exit 2)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"pgexact {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a reader that stopped (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
