r"""Softmax policies over finite action sets, parametrized by a flat vector ``theta``.

Both parametrizations compute logits :math:`z(s, a)` that are linear in θ,
:math:`\pi_\theta(a|s) = \exp z(s, a) / \sum_b \exp z(s, b)`, so that the score is
:math:`\nabla_\theta \log \pi_\theta(a|s) = \nabla_\theta z(s, a) - \sum_b \pi_\theta(b|s) \nabla_\theta z(s, b)`
(Sutton & Barto 2018, eq. 13.9 for the linear case). Log-probabilities are computed as
``z - logsumexp(z)``, stable for |θ| up to 1e3 and beyond.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from .._validation import as_float_array, check_positive_int, check_theta

__all__ = ["SoftmaxPolicy", "TabularSoftmax", "LinearSoftmax"]


class SoftmaxPolicy:
    """Common interface of the softmax parametrizations (subclasses define the logits)."""

    n_states: int
    n_actions: int
    n_params: int

    # ---- subclass hooks: logits are linear in theta
    def _logits(self, theta: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _logit_jacobian_t(self, weights: np.ndarray) -> np.ndarray:
        """:math:`\\sum_{s,a} w[s,a] \\nabla_\\theta z(s,a)`, shape (n_params,)."""
        raise NotImplementedError

    def _logit_jvp(self, v: np.ndarray) -> np.ndarray:
        """:math:`\\nabla_\\theta z(s,a) \\cdot v`, shape (S, A)."""
        raise NotImplementedError

    def _logit_jacobian(self) -> np.ndarray:
        """:math:`\\nabla_\\theta z(s,a)`, shape (S, A, n_params)."""
        raise NotImplementedError

    # ---- public API
    def check_theta(self, theta: Any) -> np.ndarray:
        """Validate ``theta``: a flat float64 vector of length ``n_params`` with finite entries."""
        return check_theta(theta, self.n_params)

    def log_probs(self, theta: Any) -> np.ndarray:
        r""":math:`\log \pi_\theta(a|s)`, shape (S, A); finite whenever the logits are."""
        z = self._logits(self.check_theta(theta))
        return z - logsumexp(z, axis=1, keepdims=True)

    def probs(self, theta: Any) -> np.ndarray:
        r""":math:`\pi_\theta(a|s)`, shape (S, A); each row sums to 1."""
        return np.exp(self.log_probs(theta))

    def score(self, theta: Any) -> np.ndarray:
        r"""Score :math:`\nabla_\theta \log \pi_\theta(a|s)`, shape (S, A, n_params).

        Dense: memory grows as S·A·n_params. The exact core never builds it for large problems;
        it uses :meth:`score_contract` and :meth:`score_dot`.
        """
        pi = self.probs(theta)
        jac = self._logit_jacobian()
        return jac - np.einsum("sb,sbk->sk", pi, jac)[:, None, :]

    def score_contract(self, theta: Any, weights: np.ndarray) -> np.ndarray:
        r""":math:`\sum_{s,a} w(s, a) \nabla_\theta \log \pi_\theta(a|s)`, shape (n_params,).

        Parameters
        ----------
        theta : array_like, shape (n_params,)
        weights : numpy.ndarray, shape (S, A)
        """
        pi = self.probs(theta)
        w = np.asarray(weights, dtype=np.float64)
        centred = w - pi * w.sum(axis=1, keepdims=True)
        return self._logit_jacobian_t(centred)

    def score_dot(self, theta: Any, v: Any) -> np.ndarray:
        r""":math:`\nabla_\theta \log \pi_\theta(a|s) \cdot v`, shape (S, A), for ``v`` of shape (n_params,)."""
        pi = self.probs(theta)
        zv = self._logit_jvp(check_theta(v, self.n_params, name="v"))
        return zv - np.sum(pi * zv, axis=1, keepdims=True)


class TabularSoftmax(SoftmaxPolicy):
    r"""Tabular softmax: one logit per state-action pair, :math:`z(s, a) = \theta_{s A + a}`.

    Parameters
    ----------
    n_states, n_actions : int
        Sizes S and A; ``n_params = S * A`` and ``theta.reshape(S, A)`` is the logit table.

    Notes
    -----
    The score is :math:`\nabla_{\theta_{s',b}} \log\pi(a|s) = 1[s=s'](1[a=b] - \pi(b|s))`
    (Agarwal et al. 2021, sec. 4). Adding a constant to every logit of one state leaves π
    unchanged, so the Fisher matrix is singular along those S directions.

    Examples
    --------
    >>> import numpy as np
    >>> pol = TabularSoftmax(2, 3)
    >>> theta = np.arange(6.0)
    >>> bool(np.allclose(pol.probs(theta).sum(axis=1), 1.0))
    True
    >>> bool(np.allclose(np.einsum("sa,sak->sk", pol.probs(theta), pol.score(theta)), 0.0))
    True
    """

    def __init__(self, n_states: int, n_actions: int) -> None:
        self.n_states = check_positive_int("n_states", n_states)
        self.n_actions = check_positive_int("n_actions", n_actions)
        self.n_params = self.n_states * self.n_actions

    def __repr__(self) -> str:
        return f"TabularSoftmax(n_states={self.n_states}, n_actions={self.n_actions})"

    def _logits(self, theta: np.ndarray) -> np.ndarray:
        return theta.reshape(self.n_states, self.n_actions)

    def _logit_jacobian_t(self, weights: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(weights).reshape(-1).copy()

    def _logit_jvp(self, v: np.ndarray) -> np.ndarray:
        return v.reshape(self.n_states, self.n_actions)

    def _logit_jacobian(self) -> np.ndarray:
        S, A = self.n_states, self.n_actions
        return np.eye(S * A).reshape(S, A, S * A)


class LinearSoftmax(SoftmaxPolicy):
    r"""Linear-in-features softmax: :math:`z(s, a) = \phi(s, a)^\top \theta`.

    Parameters
    ----------
    features : array_like, shape (S, A, d)
        Feature vectors :math:`\phi(s, a)`; ``n_params = d``.

    Notes
    -----
    Score: :math:`\phi(s, a) - \sum_b \pi(b|s) \phi(s, b)` (Sutton & Barto 2018, eq. 13.9).

    Examples
    --------
    >>> import numpy as np
    >>> phi = np.arange(12.0).reshape(2, 3, 2)
    >>> pol = LinearSoftmax(phi)
    >>> pol.n_params
    2
    >>> bool(np.allclose(pol.probs(np.zeros(2)), 1 / 3))
    True
    """

    def __init__(self, features: Any) -> None:
        phi = as_float_array("features", features, ndim=3)
        if 0 in phi.shape:
            raise ValueError(f"features must have shape (S, A, d) with S, A, d >= 1, got {phi.shape}")
        phi.flags.writeable = False
        self.features = phi
        self.n_states, self.n_actions, self.n_params = (int(n) for n in phi.shape)

    def __repr__(self) -> str:
        return (
            f"LinearSoftmax(n_states={self.n_states}, n_actions={self.n_actions}, "
            f"n_params={self.n_params})"
        )

    def _logits(self, theta: np.ndarray) -> np.ndarray:
        return self.features @ theta

    def _logit_jacobian_t(self, weights: np.ndarray) -> np.ndarray:
        return np.einsum("sa,sak->k", weights, self.features)

    def _logit_jvp(self, v: np.ndarray) -> np.ndarray:
        return self.features @ v

    def _logit_jacobian(self) -> np.ndarray:
        return np.array(self.features)
