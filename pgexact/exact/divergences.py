r"""KL divergences and total variation between two policies on the same finite state space.

Direction is explicit: every function takes ``p`` and ``q`` and computes a divergence of ``p``
from ``q``, :math:`KL(p \| q) = E_p[\log p - \log q]`. TRPO's constraint is
``kl_expected(pi_old, pi_new, d_old)`` = :math:`E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s) \| \pi_{new}(\cdot|s))`
(Schulman et al. 2015, eq. 12). Elementwise terms use ``scipy.special.rel_entr``, so
:math:`0 \log 0 = 0` and a KL is ``+inf`` (never NaN) when q puts zero mass where p does not:
that is the divergence's true value (p is not absolutely continuous with respect to q).
``p`` and ``q`` are policy matrices or ``(policy, theta)`` pairs
(:func:`pgexact.policies.as_probabilities`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import rel_entr

from .._validation import as_float_array, as_probabilities, check_distribution

__all__ = ["kl_per_state", "kl_expected", "kl_expected_gradient", "kl_max", "tv_per_state", "tv_max"]


def _pair(p: Any, q: Any) -> tuple[np.ndarray, np.ndarray]:
    p = as_probabilities(p, "p")
    q = as_probabilities(q, "q")
    if q.shape != p.shape:
        raise ValueError(f"q must have the shape {p.shape} of p, got {q.shape}")
    return p, q


def kl_per_state(p: Any, q: Any) -> np.ndarray:
    r"""Per-state :math:`KL(p(\cdot|s) \| q(\cdot|s)) = \sum_a p(a|s) \log\frac{p(a|s)}{q(a|s)}`.

    Parameters
    ----------
    p, q : array_like, shape (S, A), or tuple (policy, theta)
        Policy matrices (rows are distributions) or parametrized policies with their
        parameters. The divergence is *of p from q*.

    Returns
    -------
    numpy.ndarray, shape (S,)
        ``+inf`` in a state where ``q(a|s) = 0 < p(a|s)`` for some a (the exact value).

    Examples
    --------
    >>> import numpy as np
    >>> kl = kl_per_state([[0.5, 0.5]], [[0.9, 0.1]])
    >>> bool(np.isclose(kl[0], 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)))
    True
    """
    p, q = _pair(p, q)
    return rel_entr(p, q).sum(axis=1)


def kl_expected(p: Any, q: Any, weights: Any) -> float:
    r""":math:`E_{s \sim w}[KL(p(\cdot|s) \| q(\cdot|s))]` for a state distribution ``weights`` of shape (S,)."""
    kl = kl_per_state(p, q)
    w = as_float_array("weights", weights, shape=(kl.shape[0],))
    check_distribution("weights", w)
    pos = w > 0  # states of weight zero contribute nothing, even where their KL is inf
    return float(w[pos] @ kl[pos])


def kl_max(p: Any, q: Any) -> float:
    r""":math:`\max_s KL(p(\cdot|s) \| q(\cdot|s))` (Schulman et al. 2015, the :math:`D_{KL}^{max}` of Theorem 1).

    ``p``, ``q``: as in :func:`kl_per_state`, with at least one state. The result is ``+inf``
    when, in some state, q puts zero probability on an action p takes (the exact value).

    Examples
    --------
    >>> kl_max([[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [1.0, 0.0]])
    inf
    """
    return float(np.max(kl_per_state(*_nonempty(p, q))))


def tv_per_state(p: Any, q: Any) -> np.ndarray:
    r"""Per-state total variation :math:`\frac12 \sum_a |p(a|s) - q(a|s)|`, shape (S,). Symmetric."""
    p, q = _pair(p, q)
    return 0.5 * np.abs(p - q).sum(axis=1)


def tv_max(p: Any, q: Any) -> float:
    r""":math:`\max_s D_{TV}(p(\cdot|s), q(\cdot|s))`, the α of Schulman et al. 2015, Theorem 1.

    ``p``, ``q``: as in :func:`tv_per_state`, with at least one state.
    """
    return float(np.max(tv_per_state(*_nonempty(p, q))))


def _nonempty(p: Any, q: Any) -> tuple[np.ndarray, np.ndarray]:
    """The validated pair, refusing zero states (a maximum over no state is undefined)."""
    p, q = _pair(p, q)
    if p.shape[0] == 0:
        raise ValueError(f"p and q have no state (shape {p.shape}): the maximum over states needs S >= 1")
    return p, q


def kl_expected_gradient(policy: Any, theta_p: Any, theta_q: Any, weights: Any) -> np.ndarray:
    r"""Gradient in :math:`\theta_q` of :math:`E_{s\sim w} KL(\pi_{\theta_p}(\cdot|s) \| \pi_{\theta_q}(\cdot|s))`.

    For softmax logits z linear in θ,
    :math:`KL(p \| \pi_{\theta_q}) = \sum_a p_a \log p_a - \sum_a p_a z_a + \log\sum_b e^{z_b}`, so

    .. math:: \nabla_{\theta_q} = \sum_s w(s) \sum_a (\pi_{\theta_q}(a|s) - \pi_{\theta_p}(a|s)) \nabla z(s, a)

    which vanishes at :math:`\theta_q = \theta_p`; its Jacobian there is the Fisher matrix
    with state weights w (Kakade 2002, sec. 3; Schulman et al. 2015, Appendix C).

    Parameters
    ----------
    policy : TabularSoftmax or LinearSoftmax
    theta_p, theta_q : array_like, shape (n_params,)
    weights : array_like, shape (S,)
        A state distribution.

    Returns
    -------
    numpy.ndarray, shape (n_params,)
    """
    from ..policies.softmax import SoftmaxPolicy
    from .._validation import check_theta

    if not isinstance(policy, SoftmaxPolicy):
        raise TypeError(f"policy must be a softmax parametrization, got {type(policy).__name__}")
    tp = check_theta(theta_p, policy.n_params, name="theta_p")
    tq = check_theta(theta_q, policy.n_params, name="theta_q")
    w = as_float_array("weights", weights, shape=(policy.n_states,))
    check_distribution("weights", w)
    diff = policy.probs(tq) - policy.probs(tp)
    return policy._logit_jacobian_t(w[:, None] * diff)
