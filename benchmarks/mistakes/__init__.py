"""The catalogue of plausible one-line mistakes run by ``benchmarks/plausible_mistakes.py``.

One module per area of the library, each defining ``MISTAKES``, a list of :class:`Mistake`. A mistake
is the replacement of one exact piece of text (``old``, which must occur exactly once in ``path``) by
``new``: what a person writing that line could plausibly have typed instead. ``tests`` names the test
files that guard the code (run with ``pytest -x``); ``why`` says what the mistake means.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    id: str
    path: str
    old: str
    new: str
    why: str
    tests: tuple[str, ...] = ()
