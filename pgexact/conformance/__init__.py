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
  its updates are consistent with, and their angle to the exact policy gradient;
* :func:`update_surrogate` — the exact expected update of any torch network or JAX function
  (a scalar whose gradient is :math:`J^\top w`);
* :func:`batch_covariance` — the exact covariance of one batch's update (tiny instances, by
  enumeration).
"""

from ._driver import DriverRun, TransitionBatch
from .convention import PRESETS, Convention
from .expected import ExpectedUpdate, expected_update

__all__ = ["Convention", "PRESETS", "DriverRun", "TransitionBatch", "ExpectedUpdate", "expected_update"]

from .audit import AuditReport, audit  # noqa: E402

__all__ += ["AuditReport", "audit"]

from .adapters import update_surrogate, update_weights  # noqa: E402
from .covariance import BatchCovariance, batch_covariance  # noqa: E402

__all__ += ["update_surrogate", "update_weights", "BatchCovariance", "batch_covariance"]
