"""Parametrizations: a flat parameter vector theta -> a policy and its score. No dynamics here.

Also the two ways of giving a policy directly as probabilities: :func:`as_probabilities` (the
resolver of ``pi`` arguments: a matrix or a ``(policy, theta)`` pair) and :func:`deterministic`.
"""

from .matrices import as_probabilities, deterministic
from .softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax, log_softmax_rows, softmax_rows

__all__ = [
    "LinearSoftmax",
    "SoftmaxPolicy",
    "TabularSoftmax",
    "as_probabilities",
    "deterministic",
    "log_softmax_rows",
    "softmax_rows",
]
