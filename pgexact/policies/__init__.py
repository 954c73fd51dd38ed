"""Parametrizations: a flat parameter vector theta -> a policy and its score. No dynamics here."""

from .softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax

__all__ = ["LinearSoftmax", "SoftmaxPolicy", "TabularSoftmax"]
