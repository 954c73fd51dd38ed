r"""Softmax policies over finite action sets, parametrized by a flat vector ``theta``.

Both parametrizations compute logits :math:`z(s, a)` that are linear in θ,
:math:`\pi_\theta(a|s) = \exp z(s, a) / \sum_b \exp z(s, b)`, so that the score is
:math:`\nabla_\theta \log \pi_\theta(a|s) = \nabla_\theta z(s, a) - \sum_b \pi_\theta(b|s) \nabla_\theta z(s, b)`
(Sutton & Barto 2018, eq. 13.9 for the linear case).

Numerics: with :math:`m(s) = \max_a z(s, a)` and :math:`y = z - m \le 0`, the probabilities are
:math:`e^{y} / \sum_b e^{y_b}` (the denominator lies in [1, A], so every row sums to 1 within a
few ulps for every finite θ) and the log-probabilities :math:`y - \log\sum_b e^{y_b}` (exact to
rounding: no cancellation between large logits). An optional ``action_mask`` (S, A) of feasible
actions gives infeasible actions probability 0 (logit :math:`-\infty`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_float_array, check_action_mask, check_memory, check_positive_int, check_theta

__all__ = ["SoftmaxPolicy", "TabularSoftmax", "LinearSoftmax", "softmax_rows", "log_softmax_rows"]


def _check_logits(z: Any, name: str = "z") -> np.ndarray:
    """A float64 (S, A) copy of logits: finite or ``-inf``, with a finite entry in every row."""
    arr = as_float_array(name, z, ndim=2, allow_nonfinite=True)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {arr.shape}")
    bad = np.isnan(arr) | (arr == np.inf)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}{list(idx)} is {arr[idx]}, expected a finite logit or -inf")
    empty = ~np.isfinite(arr).any(axis=1)
    if empty.any():
        s = int(np.argmax(empty))
        raise ValueError(f"{name}[{s}, :] is all -inf, expected at least one finite logit per row")
    return arr


def softmax_rows(z: Any) -> np.ndarray:
    r"""Row-wise softmax :math:`e^{z - m} / \sum_b e^{z_b - m}` with :math:`m` the row maximum, shape (S, A).

    ``z`` (S, A) holds finite logits or ``-inf`` (probability 0); every row needs one finite entry
    (``ValueError`` naming the first offending index otherwise). Equal to
    ``scipy.special.softmax(z, axis=1)`` to rounding, with less call overhead on small arrays.
    """
    return _softmax_rows(_check_logits(z))


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    """:func:`softmax_rows` on validated logits (no check)."""
    e = _shifted(z)
    np.exp(e, out=e)
    e /= e.sum(axis=1, keepdims=True)
    return e


def _shifted(z: np.ndarray) -> np.ndarray:
    """``z - max_b z`` per row; a difference beyond the float64 range becomes ``-inf`` silently."""
    m = z.max(axis=1, keepdims=True)
    if float(m.max()) - float(z.min()) < np.inf:  # Python floats: no warning on overflow
        return z - m
    with np.errstate(over="ignore"):
        return z - m


def log_softmax_rows(z: Any) -> np.ndarray:
    r"""Row-wise :math:`\log` softmax :math:`y - \log\sum_b e^{y_b}` with :math:`y = z - \max_b z_b`, shape (S, A).

    ``z`` as in :func:`softmax_rows`; ``-inf`` logits give ``-inf``.
    """
    return _log_softmax_rows(_check_logits(z))


def _log_softmax_rows(z: np.ndarray) -> np.ndarray:
    """:func:`log_softmax_rows` on validated logits (no check)."""
    y = _shifted(z)
    return y - np.log(np.exp(y).sum(axis=1, keepdims=True))


def _logsumexp_rows(z: np.ndarray) -> np.ndarray:
    r""":math:`\log\sum_b e^{z_b}` per row, shape (S,), as :math:`m + \log\sum_b e^{z_b - m}` (m the row
    maximum): ``scipy.special.logsumexp(z, axis=1)`` to rounding, without its per-call dispatch.
    A row with an infinite entry gives NaN or inf (with a floating-point warning the caller may
    silence), never a finite number."""
    m = z.max(axis=1, keepdims=True)
    return m[:, 0] + np.log(np.exp(z - m).sum(axis=1))


class SoftmaxPolicy:
    """Common interface of the softmax parametrizations (subclasses define the logits)."""

    n_states: int
    n_actions: int
    n_params: int
    action_mask: np.ndarray | None = None

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

    # ---- internal kernels on a validated theta
    def _masked_logits(self, theta: np.ndarray) -> np.ndarray:
        """Logits with ``-inf`` at infeasible actions; ValueError naming theta if they overflow."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = self._logits(theta)
        bad = ~np.isfinite(z)
        if self.action_mask is not None:
            bad &= self.action_mask  # logits of infeasible actions are never used
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"theta gives a logit z{list(idx)} = {z[idx]} that is not a finite float64 "
                f"(max |theta| = {np.max(np.abs(theta)):.3g}): rescale theta or the features"
            )
        if self.action_mask is not None:
            z = np.where(self.action_mask, z, -np.inf)
        return z

    def _probs(self, theta: np.ndarray) -> np.ndarray:
        """Probabilities for a validated theta (no check)."""
        return _softmax_rows(self._masked_logits(theta))

    def _centred(self, pi: np.ndarray, w: np.ndarray) -> np.ndarray:
        """:math:`w - \\pi \\sum_a w`, the weights whose logit contraction is the score contraction."""
        return w - pi * w.sum(axis=1, keepdims=True)

    def _score_contract(self, pi: np.ndarray, weights: np.ndarray) -> np.ndarray:
        r""":math:`\sum_{s,a} w(s,a) \nabla\log\pi(a|s)` given the probabilities ``pi`` (no check).

        Weights at infeasible actions are ignored (the score is 0 there by convention).
        """
        if self.action_mask is not None:
            weights = np.where(self.action_mask, weights, 0.0)
        return self._logit_jacobian_t(self._centred(pi, weights))

    # ---- public API
    def check_theta(self, theta: Any) -> np.ndarray:
        """Validate ``theta``: a flat float64 vector of length ``n_params`` with finite entries."""
        return check_theta(theta, self.n_params)

    def log_probs(self, theta: Any) -> np.ndarray:
        r""":math:`\log \pi_\theta(a|s)`, shape (S, A); finite at feasible actions, ``-inf`` at infeasible ones."""
        return _log_softmax_rows(self._masked_logits(self.check_theta(theta)))

    def probs(self, theta: Any) -> np.ndarray:
        r""":math:`\pi_\theta(a|s)`, shape (S, A); each row sums to 1 within a few ulps."""
        return self._probs(self.check_theta(theta))

    def score(self, theta: Any) -> np.ndarray:
        r"""Score :math:`\nabla_\theta \log \pi_\theta(a|s)`, shape (S, A, n_params).

        Dense: memory grows as S·A·n_params. The exact core never builds it for large problems;
        it uses :meth:`score_contract` and :meth:`score_dot`. Rows of infeasible actions
        (``action_mask`` False), where :math:`\log\pi = -\infty`, are set to 0.
        """
        pi = self.probs(theta)
        SA = self.n_states * self.n_actions
        check_memory(f"score with n_params={self.n_params} and S*A={SA}", 16 * SA * self.n_params,
                     "use score_contract or score_dot (no dense score)")
        jac = self._logit_jacobian()
        out = jac - np.einsum("sb,sbk->sk", pi, jac)[:, None, :]
        if self.action_mask is not None:
            out[~self.action_mask] = 0.0
        return out

    def score_contract(self, theta: Any, weights: np.ndarray) -> np.ndarray:
        r""":math:`\sum_{s,a} w(s, a) \nabla_\theta \log \pi_\theta(a|s)`, shape (n_params,).

        Parameters
        ----------
        theta : array_like, shape (n_params,)
        weights : numpy.ndarray, shape (S, A)
        """
        theta = self.check_theta(theta)
        w = as_float_array("weights", weights, shape=(self.n_states, self.n_actions))
        return self._score_contract(self._probs(theta), w)

    def score_dot(self, theta: Any, v: Any) -> np.ndarray:
        r""":math:`\nabla_\theta \log \pi_\theta(a|s) \cdot v`, shape (S, A), for ``v`` of shape (n_params,)."""
        pi = self.probs(theta)
        return self._score_dot(pi, check_theta(v, self.n_params, name="v"))

    def _score_dot(self, pi: np.ndarray, v: np.ndarray) -> np.ndarray:
        """:meth:`score_dot` given the probabilities ``pi`` and a validated ``v`` (no check)."""
        zv = self._logit_jvp(v)
        if self.action_mask is not None:
            zv = np.where(self.action_mask, zv, 0.0)
            return np.where(self.action_mask, zv - np.sum(pi * zv, axis=1, keepdims=True), 0.0)
        return zv - (pi * zv).sum(axis=1, keepdims=True)


class TabularSoftmax(SoftmaxPolicy):
    r"""Tabular softmax: one logit per state-action pair, :math:`z(s, a) = \theta_{s A + a}`.

    Parameters
    ----------
    n_states, n_actions : int
        Sizes S and A; ``n_params = S * A`` and ``theta.reshape(S, A)`` is the logit table.
    action_mask : array_like of bool, shape (S, A), optional
        Feasible actions; infeasible ones get probability 0 (their parameters have zero
        gradient). Pass the model's ``mdp.action_mask``: a policy knows no dynamics.

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
    >>> masked = TabularSoftmax(1, 3, action_mask=[[True, False, True]])
    >>> masked.probs(np.zeros(3)).tolist()
    [[0.5, 0.0, 0.5]]
    """

    def __init__(self, n_states: int, n_actions: int, *, action_mask: Any = None) -> None:
        self.n_states = check_positive_int("n_states", n_states)
        self.n_actions = check_positive_int("n_actions", n_actions)
        self.n_params = self.n_states * self.n_actions
        self.action_mask = check_action_mask(action_mask, self.n_states, self.n_actions)

    def __repr__(self) -> str:
        mask = "" if self.action_mask is None else ", action_mask=..."
        return f"TabularSoftmax(n_states={self.n_states}, n_actions={self.n_actions}{mask})"

    def _logits(self, theta: np.ndarray) -> np.ndarray:
        return theta.reshape(self.n_states, self.n_actions)

    def _masked_logits(self, theta: np.ndarray) -> np.ndarray:
        # the logits are the entries of a validated (finite) theta: nothing can overflow
        z = theta.reshape(self.n_states, self.n_actions)
        return z if self.action_mask is None else np.where(self.action_mask, z, -np.inf)

    def _logit_jacobian_t(self, weights: np.ndarray) -> np.ndarray:
        # callers pass a freshly computed array (see _score_contract): no copy needed
        return weights.reshape(-1)

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
    action_mask : array_like of bool, shape (S, A), optional
        Feasible actions; infeasible ones get probability 0 and a zero score.

    Notes
    -----
    Score: :math:`\phi(s, a) - \sum_b \pi(b|s) \phi(s, b)` (Sutton & Barto 2018, eq. 13.9).
    A θ whose logits :math:`\phi^\top\theta` overflow float64 raises ``ValueError`` naming theta.

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

    def __init__(self, features: Any, *, action_mask: Any = None) -> None:
        phi = as_float_array("features", features, ndim=3)
        if 0 in phi.shape:
            raise ValueError(f"features must have shape (S, A, d) with S, A, d >= 1, got {phi.shape}")
        phi.flags.writeable = False
        self.features = phi
        self.n_states, self.n_actions, self.n_params = (int(n) for n in phi.shape)
        self.action_mask = check_action_mask(action_mask, self.n_states, self.n_actions)

    def __repr__(self) -> str:
        mask = "" if self.action_mask is None else ", action_mask=..."
        return (
            f"LinearSoftmax(n_states={self.n_states}, n_actions={self.n_actions}, "
            f"n_params={self.n_params}{mask})"
        )

    def _logits(self, theta: np.ndarray) -> np.ndarray:
        return self.features @ theta

    def _logit_jacobian_t(self, weights: np.ndarray) -> np.ndarray:
        return np.einsum("sa,sak->k", weights, self.features)

    def _logit_jvp(self, v: np.ndarray) -> np.ndarray:
        return self.features @ v

    def _logit_jacobian(self) -> np.ndarray:
        return np.array(self.features)
