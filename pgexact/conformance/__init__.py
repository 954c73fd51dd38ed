"""Conformance: what the policy-gradient updates of libraries estimate, against exact mathematics.

* :class:`Convention` and :data:`PRESETS` — how an update is formed (row weighting, time-limit
  truncation, gymnasium autoreset, GAE λ and γ, entropy bonus, advantage normalization, the
  buffer's end) and each library's documented defaults;
* :func:`expected_update` — the exact expectation of one batch's update (no sampling);
* :mod:`~pgexact.conformance.reference` — a plain-numpy buffer simulator of every convention;
* :mod:`~pgexact.conformance.stats` — the exact test and the scale-free test for dependent
  batches from one continuous stream;
* :func:`audit` — runs a driver (a library's own collection, buffer and loss code, see
  :mod:`pgexact.conformance.drivers`) or a user's update function and reports the conventions
  its updates are consistent with, and their angle to the exact policy gradient.
"""

from ._driver import DriverRun, TransitionBatch
from .convention import PRESETS, Convention
from .expected import ExpectedUpdate, expected_update

__all__ = ["Convention", "PRESETS", "DriverRun", "TransitionBatch", "ExpectedUpdate", "expected_update"]

from .audit import AuditReport, audit  # noqa: E402

__all__ += ["AuditReport", "audit"]
