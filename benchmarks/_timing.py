"""Interleaved timing shared by the benchmark scripts: subject and reference alternate, medians."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def batch_time(fn: Callable[[], object], n: int, clock: Callable[[], float] = time.process_time) -> float:
    """Time of ``n`` calls of ``fn`` per call, on ``clock``.

    The default clock is CPU time (user + sys of this process, ``time.process_time``), which a
    loaded machine does not inflate (another process's work is not counted).
    """
    start = clock()
    for _ in range(n):
        fn()
    return (clock() - start) / n


def interleaved_ratio(
    subject: Callable[[], object],
    reference: Callable[[], object],
    rounds: int,
    n: int = 1,
    n_ref: int | None = None,
    clock: Callable[[], float] = time.process_time,
) -> tuple[float, float, float]:
    """Median per-round ratio subject/reference, and the median per-call times (seconds)."""
    ratios, ts, tr = [], [], []
    for _ in range(rounds):
        a = batch_time(subject, n, clock)
        b = batch_time(reference, n if n_ref is None else n_ref, clock)
        ratios.append(a / b)
        ts.append(a)
        tr.append(b)
    return statistics.median(ratios), statistics.median(ts), statistics.median(tr)
