r"""Gradient sources: what an update rule may ask about the policy at the current parameters.

An update rule never looks at an MDP. It asks a *source* for an *oracle* at the current
parameters, ``oracle = source.at(theta, seed=None)``, and the oracle answers, consistently
(one evaluation, or one batch of samples, serves every question of one update):

* ``oracle.gradient`` — :math:`\nabla J(\theta)`;
* ``oracle.fisher_vector_product(v)`` — :math:`F v` with the state-averaged Fisher;
* ``oracle.natural_gradient()`` — :math:`F^+ \nabla J`;
* ``oracle.surrogate(theta_new)`` — the surrogate advantage :math:`\bar A(\pi_{\theta'})`
  under the old state distribution (Schulman et al. 2015, eq. 14);
* ``oracle.kl(theta_new)`` — :math:`E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s) \| \pi_{new}(\cdot|s))`;
* ``oracle.batch`` — a :class:`SurrogateBatch` of weighted (state, action, advantage) rows, on
  which the PPO objectives are evaluated and minibatched;
* ``oracle.J`` — the exact return at θ when the problem allows it, else ``None``.

:class:`ExactSource` answers in closed form (:mod:`pgexact.exact`); the sampled source
(:class:`pgexact.updates.SampledSource`) answers from Monte Carlo samples with a sample budget
and a seed. Updates do not know which one they were given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
from scipy.special import rel_entr

from .._validation import (
    ReadOnlyOnCopy, as_float_array, check_distribution, check_positive_finite, check_theta, freeze_arrays,
)
from ._checks import check_clip
from ..exact.fisher import _natural_gradient
from ..exact.gradients import gradient_weights
from ..exact._checks import check_mdp, check_policy, check_policy_theta
from ..exact.evaluation import Evaluation, _evaluate, evaluate
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import SoftmaxPolicy, TabularSoftmax, _shifted

__all__ = [
    "SurrogateBatch",
    "Oracle",
    "GradientSource",
    "ExactOracle",
    "ExactSource",
    "surrogate_value",
    "surrogate_and_gradient",
    "kl_and_gradient",
    "clipped_objective",
]


# ----------------------------------------------------------------------------- batches
@dataclass(frozen=True, eq=False)
class SurrogateBatch(ReadOnlyOnCopy):
    r"""Weighted rows :math:`(s_i, a_i, A_i, w_i, \log\pi_{old}(a_i|s_i))` and a state distribution.

    The surrogate, the PPO objectives and their gradients are sums over rows,

    .. math::

        \bar A(\theta') = \sum_i w_i\, (r_i(\theta') - 1)\, A_i, \qquad
        r_i(\theta') = \frac{\pi_{\theta'}(a_i|s_i)}{\pi_{old}(a_i|s_i)},

    and the KL term is :math:`\sum_s \nu(s)\, KL(\pi_{old}(\cdot|s) \| \pi_{\theta'}(\cdot|s))`.

    Exact batches (:class:`ExactSource`) hold every pair (s, a) with
    :math:`w = \rho_{old}(s)\pi_{old}(a|s)` (finite horizon: every (t, s, a) with
    :math:`w = \gamma^t p_t(s) \pi_{old}(a|s)` and :math:`A_t`), so the sums *are* the closed forms;
    sampled batches hold one row per visited (episode, t) with :math:`w = \gamma^t / N`.
    Weights are stored as logarithms, so that a row whose :math:`\pi_{old}(a|s)` underflows to 0
    (logits of size ~1e3) still contributes :math:`w r = \rho(s)\pi_{new}(a|s)` exactly; rows of
    state weight :math:`\rho(s) = 0` are dropped.

    Attributes
    ----------
    states, actions : numpy.ndarray of int, shape (n,)
    advantages : numpy.ndarray, shape (n,)
    log_weights : numpy.ndarray, shape (n,)
        :math:`\log w_i` (finite); :attr:`weights` is :math:`\exp` of it.
    logp_old : numpy.ndarray, shape (n,)
        :math:`\log\pi_{old}(a_i|s_i)`.
    state_weights : numpy.ndarray, shape (S,)
        The state distribution ν of the KL term (the old occupancy, or its sample estimate).
    """

    states: np.ndarray
    actions: np.ndarray
    advantages: np.ndarray
    log_weights: np.ndarray
    logp_old: np.ndarray
    state_weights: np.ndarray

    def __post_init__(self) -> None:
        freeze_arrays(self, ("states", "actions", "advantages", "log_weights", "logp_old", "state_weights"))

    @property
    def weights(self) -> np.ndarray:
        r"""Row weights :math:`w_i = \exp(\log w_i)`, shape (n,) (may underflow to 0)."""
        return np.exp(self.log_weights)

    @property
    def n_rows(self) -> int:
        """Number of rows n."""
        return int(self.states.shape[0])

    def subset(self, index: Any, scale: float = 1.0) -> "SurrogateBatch":
        """The rows ``index`` with weights multiplied by ``scale`` (same state distribution).

        ``index``: integer row indices in [-n, n) or a boolean mask of length n; ``scale``: a
        positive finite number.
        """
        return self._subset(_check_rows("index", index, self.n_rows), check_positive_finite("scale", scale))

    def _subset(self, index: np.ndarray, scale: float) -> "SurrogateBatch":
        """:meth:`subset` of checked row indices and scale (PPO's minibatch loop)."""
        return SurrogateBatch(
            states=self.states[index],
            actions=self.actions[index],
            advantages=self.advantages[index],
            log_weights=self.log_weights[index] + np.log(scale),
            logp_old=self.logp_old[index],
            state_weights=self.state_weights,
        )


def _check_rows(name: str, index: Any, n: int) -> np.ndarray:
    """Row indices (integers in [-n, n)) or a boolean mask of length n, as an index array."""
    if isinstance(index, (str, bytes)) or index is None:
        raise TypeError(f"{name} must be integer row indices or a boolean mask, got {type(index).__name__}")
    if isinstance(index, slice):
        return np.arange(n)[index]
    arr = np.asarray(index)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"{name} as a boolean mask must have shape ({n},), got {arr.shape}")
        return np.flatnonzero(arr)
    if arr.dtype.kind not in "iu" and not (arr.size == 0 and arr.dtype.kind == "f"):
        raise TypeError(f"{name} must be integer row indices or a boolean mask, got dtype {arr.dtype}")
    arr = arr.astype(np.intp).reshape(-1)
    bad = (arr < -n) | (arr >= n)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}] is {arr[i]}, expected a row in [-{n}, {n})")
    return arr


def _row_terms(
    policy: SoftmaxPolicy, batch: SurrogateBatch, theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(w_i r_i, r_i, log pi_theta)``; ``w_i r_i`` is computed in log space so that it never
    overflows where the product is finite (``w_i`` carries the factor :math:`\\pi_{old}`)."""
    logp_all = policy.log_probs(theta)
    w_ratio, ratio = _ratios(batch, logp_all)
    return w_ratio, ratio, logp_all


def _ratios(batch: SurrogateBatch, logp_all: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``(w_i r_i, r_i)`` given :math:`\log\pi_\theta`, shape (S, A)."""
    log_ratio = logp_all[batch.states, batch.actions] - batch.logp_old
    with np.errstate(over="ignore"):
        ratio = np.exp(log_ratio)
        w_ratio = np.exp(batch.log_weights + log_ratio)
    return w_ratio, ratio


def _score_contract(policy: SoftmaxPolicy, theta: np.ndarray, W: np.ndarray, logp: np.ndarray) -> np.ndarray:
    r""":math:`\sum_{s,a} W(s, a) \nabla\log\pi_\theta(a|s)` with :math:`\log\pi_\theta` already known.

    Logits linear in θ: the score is :math:`\nabla z - E_\pi \nabla z`, so the contraction is the
    logit Jacobian applied to :math:`W - \pi \sum_a W` (what ``policy.score_contract`` computes
    after recomputing π).
    """
    if not hasattr(policy, "_logit_jacobian_t"):
        return policy.score_contract(theta, W)
    return policy._logit_jacobian_t(W - np.exp(logp) * W.sum(axis=1, keepdims=True))


def _contract_rows(
    policy: SoftmaxPolicy, theta: np.ndarray, batch: SurrogateBatch, c: np.ndarray, logp: np.ndarray
) -> np.ndarray:
    r""":math:`\sum_i c_i \nabla\log\pi_\theta(a_i|s_i)`, shape (n_params,)."""
    S, A = policy.n_states, policy.n_actions
    W = np.bincount(batch.states * A + batch.actions, weights=c, minlength=S * A).reshape(S, A)
    return _score_contract(policy, theta, W, logp)


def _check_surrogate_args(policy: Any, batch: Any, theta: Any) -> np.ndarray:
    """Check the (policy, batch, theta) of the public surrogate functions; return theta."""
    if not isinstance(policy, SoftmaxPolicy):
        raise TypeError(f"policy must be a SoftmaxPolicy, got {type(policy).__name__}")
    if not isinstance(batch, SurrogateBatch):
        raise TypeError(f"batch must be a SurrogateBatch, got {type(batch).__name__}")
    n = None
    for name, kind, bound in (("states", "iu", policy.n_states), ("actions", "iu", policy.n_actions),
                              ("advantages", "f", None), ("log_weights", "f", None), ("logp_old", "f", None)):
        arr = getattr(batch, name)
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in kind or arr.ndim != 1:
            what = "integers" if kind == "iu" else "float64 numbers"
            raise TypeError(f"batch.{name} must be a 1-D array of {what}, got {type(arr).__name__}")
        if n is not None and arr.shape[0] != n:
            raise ValueError(f"batch.{name} has {arr.shape[0]} rows, batch.states has {n}")
        n = arr.shape[0]
        bad = ((arr < 0) | (arr >= bound)) if bound is not None else ~np.isfinite(arr)
        if name == "log_weights":
            bad = np.isnan(arr) | (arr == np.inf)  # log 0 = -inf is a zero weight
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"batch.{name}[{i}] is {arr[i]}, out of range for policy")
    nu = batch.state_weights
    if not isinstance(nu, np.ndarray) or nu.shape != (policy.n_states,) or not np.all(np.isfinite(nu) & (nu >= 0)):
        raise ValueError(f"batch.state_weights must be finite and >= 0 of shape ({policy.n_states},)")
    return check_theta(theta, policy.n_params)


def surrogate_value(policy: SoftmaxPolicy, batch: SurrogateBatch, theta: np.ndarray) -> float:
    r"""Surrogate :math:`\sum_i w_i (r_i(\theta) - 1) A_i` of a batch.

    The ratio-free term :math:`\sum_i w_i A_i` has expectation
    :math:`\sum_s \rho(s) \sum_a \pi_{old}(a|s) A(s, a) = 0` (exactly 0 for an exact batch, up to
    rounding); subtracting it makes the value 0 at :math:`\theta_{old}` and keeps a sampled
    surrogate unbiased when its :math:`A_i` estimate Q rather than A.
    """
    return _surrogate_value(policy, batch, _check_surrogate_args(policy, batch, theta))


def _surrogate_value(policy: SoftmaxPolicy, batch: SurrogateBatch, theta: np.ndarray) -> float:
    """:func:`surrogate_value` on checked arguments."""
    return _surrogate_from_log_probs(batch, policy.log_probs(theta))


def _surrogate_from_log_probs(batch: SurrogateBatch, logp: np.ndarray) -> float:
    r""":func:`surrogate_value` given :math:`\log\pi_\theta`, shape (S, A)."""
    w_ratio = _ratios(batch, logp)[0]
    return float(np.sum((w_ratio - batch.weights) * batch.advantages))


def surrogate_and_gradient(
    policy: SoftmaxPolicy, batch: SurrogateBatch, theta: np.ndarray
) -> tuple[float, np.ndarray]:
    r"""Surrogate (:func:`surrogate_value`) and its gradient :math:`\sum_i w_i r_i A_i \nabla\log\pi_\theta(a_i|s_i)`."""
    return _surrogate_and_gradient(policy, batch, _check_surrogate_args(policy, batch, theta))


def _surrogate_and_gradient(
    policy: SoftmaxPolicy, batch: SurrogateBatch, theta: np.ndarray
) -> tuple[float, np.ndarray]:
    w_ratio, _, logp = _row_terms(policy, batch, theta)
    c = w_ratio * batch.advantages
    value = float(np.sum((w_ratio - batch.weights) * batch.advantages))
    return value, _contract_rows(policy, theta, batch, c, logp)


def kl_and_gradient(
    policy: SoftmaxPolicy, batch: SurrogateBatch, theta: np.ndarray, pi_old: np.ndarray
) -> tuple[float, np.ndarray]:
    r""":math:`\sum_s \nu(s) KL(\pi_{old}(\cdot|s) \| \pi_\theta(\cdot|s))` and its gradient in θ.

    The gradient is :math:`\sum_s \nu(s) \sum_a (\pi_\theta(a|s) - \pi_{old}(a|s)) \nabla z(s, a)`
    (softmax logits z linear in θ), written as the score contraction with weights
    :math:`-\nu(s)\pi_{old}(a|s)`.
    """
    theta = _check_surrogate_args(policy, batch, theta)
    pi_old = as_float_array("pi_old", pi_old, shape=(policy.n_states, policy.n_actions))
    check_distribution("pi_old", pi_old)
    return _kl_and_gradient(policy, batch, theta, pi_old)


def _kl_and_gradient(
    policy: SoftmaxPolicy, batch: SurrogateBatch, theta: np.ndarray, pi_old: np.ndarray
) -> tuple[float, np.ndarray]:
    """:func:`kl_and_gradient` on checked arguments."""
    logp = policy.log_probs(theta)
    value = _kl_value(batch, logp, pi_old)
    grad = _score_contract(policy, theta, -batch.state_weights[:, None] * pi_old, logp)
    return value, grad


def _kl_value(batch: SurrogateBatch, logp: np.ndarray, pi_old: np.ndarray) -> float:
    r"""The value of :func:`kl_and_gradient` given :math:`\log\pi_\theta`, shape (S, A)."""
    nu = batch.state_weights
    with np.errstate(divide="ignore"):
        kl_s = np.sum(rel_entr(pi_old, np.exp(logp)), axis=1)
    pos = nu > 0
    return float(nu[pos] @ kl_s[pos])


def clipped_objective(
    policy: SoftmaxPolicy, batch: SurrogateBatch, theta: np.ndarray, clip: float
) -> tuple[float, np.ndarray, float]:
    r"""PPO's clipped surrogate, its gradient, and the weighted fraction of clipped rows.

    .. math::

        L^{CLIP}(\theta') = \sum_i w_i \left[\min\left(r_i A_i,\ \mathrm{clip}(r_i, 1-\epsilon, 1+\epsilon) A_i\right) - A_i\right]

    (Schulman et al. 2017, eq. 7, with the discounted state weighting of the surrogate). The
    constant :math:`\sum_i w_i A_i` is subtracted as in :func:`surrogate_value`: it is zero for an
    exact batch (:math:`\sum_a \pi_{old} A = 0`) and zero in expectation for a sampled one, and
    with it :math:`L^{CLIP}(\theta_{old}) = 0` and :math:`L^{CLIP} \le` :func:`surrogate_value`
    row by row. The
    gradient is :math:`\sum_i w_i r_i A_i \nabla\log\pi(a_i|s_i)` over the rows where the
    unclipped term is the minimum (at a tie the one-sided derivative from inside the clip range
    is used); clipped rows contribute zero.

    Returns
    -------
    value : float
    gradient : numpy.ndarray, shape (n_params,)
    clip_fraction : float
        :math:`\sum_{i\ \text{clipped}} w_i / \sum_i w_i`.
    """
    theta = _check_surrogate_args(policy, batch, theta)
    clip = check_clip(clip)
    return _clipped_objective(policy, batch, theta, clip)


def _clipped_objective(
    policy: SoftmaxPolicy, batch: SurrogateBatch, theta: np.ndarray, clip: float
) -> tuple[float, np.ndarray, float]:
    """:func:`clipped_objective` on validated arguments (the inner loop of :func:`ppo_update`)."""
    w_ratio, ratio, logp = _row_terms(policy, batch, theta)
    adv = batch.advantages
    clipped_branch = ((adv > 0) & (ratio > 1.0 + clip)) | ((adv < 0) & (ratio < 1.0 - clip))
    unclipped_term = w_ratio * adv
    clipped_term = batch.weights * np.clip(ratio, 1.0 - clip, 1.0 + clip) * adv
    value = float(np.sum(np.where(clipped_branch, clipped_term, unclipped_term) - batch.weights * adv))
    c = np.where(clipped_branch, 0.0, unclipped_term)
    grad = _contract_rows(policy, theta, batch, c, logp)
    total = float(np.sum(batch.weights))
    frac = float(np.sum(batch.weights[clipped_branch]) / total) if total > 0 else 0.0
    return value, grad, frac


# ----------------------------------------------------------------------------- protocols
class Oracle(Protocol):
    """What an update rule may ask at the current parameters (see the module docstring)."""

    policy: SoftmaxPolicy
    theta: np.ndarray
    gradient: np.ndarray
    batch: SurrogateBatch
    pi: np.ndarray
    J: float | None

    def fisher_vector_product(self, v: np.ndarray) -> np.ndarray: ...

    def natural_gradient(self) -> np.ndarray: ...

    def surrogate(self, theta_new: Any) -> float: ...

    def kl(self, theta_new: Any) -> float: ...


class GradientSource(Protocol):
    """A source of oracles: ``source.at(theta, seed=None) -> Oracle``."""

    policy: SoftmaxPolicy

    def at(self, theta: Any, seed: Any = None) -> Oracle: ...

    def exact_J(self, theta: Any) -> float | None: ...

    def exact_kl(self, theta_old: Any, theta_new: Any) -> float | None: ...


# ----------------------------------------------------------------------------- exact
#: Largest ``n_params`` of a ``TabularSoftmax`` for which :meth:`ExactOracle._cg_operator` forms
#: the Fisher matrix (n² ≤ 4096 entries: a matrix-vector product costs less than the numpy
#: calls of one structured product).
_DENSE_FISHER_MAX_PARAMS = 64

def _old_state_distribution(mdp: FiniteMDP, ev: Evaluation) -> np.ndarray:
    """Normalized occupancy d_old (finite horizon: normalized discounted time average)."""
    if mdp.horizon is None:
        return np.array(ev.d)
    disc = mdp.gamma ** np.arange(mdp.horizon)
    rho = disc @ ev.p
    return rho / disc.sum()


def exact_batch(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray, ev: Evaluation, logp: np.ndarray | None = None
) -> SurrogateBatch:
    r"""The exact :class:`SurrogateBatch`: every (s, a) (or (t, s, a)) with its closed-form weight.

    ``logp``: :math:`\log\pi_\theta`, shape (S, A), when the caller has it already."""
    logp = policy.log_probs(theta) if logp is None else logp
    S, A = mdp.n_states, mdp.n_actions
    if mdp.horizon is None:
        rho = np.repeat(ev.d / (1.0 - mdp.gamma), A)  # state weight of each (s, a) row
        adv = np.asarray(ev.A).reshape(-1)
        states, actions = np.divmod(np.arange(S * A), A)
        lp = logp.reshape(-1)
    else:
        H = mdp.horizon
        disc = mdp.gamma ** np.arange(H)
        rho = np.repeat((disc[:, None] * ev.p).reshape(-1), A)  # gamma^t p_t(s) per (t, s, a)
        adv = np.asarray(ev.A).reshape(-1)
        idx = np.arange(H * S * A)
        states, actions = (idx // A) % S, idx % A
        lp = np.broadcast_to(logp, (H, S, A)).reshape(-1)
    keep = rho > 0
    if keep.all():  # every row kept: no copies by index
        keep = slice(None)
    return SurrogateBatch(
        states=states[keep],
        actions=actions[keep],
        advantages=adv[keep].copy(),
        log_weights=np.log(rho[keep]) + lp[keep],
        logp_old=lp[keep].copy(),
        state_weights=_old_state_distribution(mdp, ev),
    )


class ExactOracle:
    r"""Closed-form answers at one parameter vector (built by :meth:`ExactSource.at`).

    Attributes
    ----------
    theta : numpy.ndarray, shape (n_params,)
    pi : numpy.ndarray, shape (S, A)
    evaluation : Evaluation
        :func:`pgexact.evaluate` of ``pi``.
    gradient : numpy.ndarray, shape (n_params,)
        :math:`\nabla J`, computed as :func:`pgexact.policy_gradient` does, from ``evaluation``.
    d : numpy.ndarray, shape (S,)
        The old state distribution of the Fisher matrix and of the KL constraint.
    batch : SurrogateBatch
        Every (s, a) row with its exact weight.
    J : float
    """

    def __init__(self, mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray) -> None:
        # validated once, here: the probabilities and the log-probabilities come from one
        # evaluation of the logits, and the policy evaluation trusts them (a softmax of finite
        # logits is a distribution on the feasible actions)
        mdp, policy, theta = check_policy_theta(mdp, policy, theta)
        self.mdp = mdp
        self.policy = policy
        self.theta = theta
        # the arithmetic of _softmax_rows and _log_softmax_rows, sharing y = z - max z
        y = _shifted(policy._masked_logits(theta))
        e = np.exp(y)
        total = e.sum(axis=1, keepdims=True)
        self.pi = e / total
        self._logp = y - np.log(total)
        self.evaluation = _evaluate(mdp, self.pi)
        self.J: float | None = self.evaluation.J
        # the policy gradient theorem's weights of pgexact.policy_gradient, on this evaluation
        self.gradient = policy._score_contract(self.pi, gradient_weights(mdp, self.pi, self.evaluation))
        self.batch = exact_batch(mdp, policy, theta, self.evaluation, self._logp)
        self.d = self.batch.state_weights
        self._d_pi = self.d[:, None] * self.pi
        self._pos = self.d > 0
        self._nu_pos = self.d[self._pos]
        # the score of a softmax with logits z linear in theta is grad z - E_pi[grad z]: Fisher-
        # vector products use the policy's logit Jacobian products and the probabilities above
        self._linear_logits = hasattr(policy, "_logit_jvp") and hasattr(policy, "_logit_jacobian_t")

    def fisher_vector_product(self, v: Any) -> np.ndarray:
        r""":math:`F v = \sum_s d(s) \sum_a \pi(a|s) \nabla\log\pi\, (\nabla\log\pi^\top v)`, shape (n_params,).

        ``v``: a real vector of n_params finite entries (``TypeError``/``ValueError`` naming it).
        """
        return self._fisher_vector_product(check_theta(v, self.policy.n_params, name="v"))

    def _fisher_vector_product(self, v: np.ndarray) -> np.ndarray:
        """:meth:`fisher_vector_product` of a float64 vector of length n_params (no check)."""
        pol, pi = self.policy, self.pi
        if not self._linear_logits:
            return pol.score_contract(self.theta, self._d_pi * pol.score_dot(self.theta, v))
        # ufunc reductions called directly: on small arrays the ndarray.sum wrapper costs more
        # than the arithmetic
        zv = pol._logit_jvp(v)
        W = zv - np.add.reduce(pi * zv, axis=1, keepdims=True)
        W *= self._d_pi
        W -= pi * np.add.reduce(W, axis=1, keepdims=True)
        return pol._logit_jacobian_t(W)

    def _cg_operator(self) -> Callable[[np.ndarray], np.ndarray]:
        r"""The map :math:`v \mapsto F v` for a conjugate-gradient loop (no argument check).

        For a ``TabularSoftmax`` with at most ``_DENSE_FISHER_MAX_PARAMS`` parameters, F is
        formed once, column j being :meth:`fisher_vector_product` of the unit vector
        :math:`e_j` (the same centred arithmetic, batched over the columns), and each product
        is one matrix-vector product: on such sizes numpy's per-call overhead, not the
        arithmetic, is the cost of a structured product. The two agree to rounding.
        Otherwise the structured product :meth:`fisher_vector_product`.
        """
        pol = self.policy
        n = pol.n_params
        if not (isinstance(pol, TabularSoftmax) and n <= _DENSE_FISHER_MAX_PARAMS):
            return self._fisher_vector_product
        S, A = pol.n_states, pol.n_actions
        pi = self.pi[:, :, None]
        Z = np.eye(n).reshape(S, A, n)  # Z[:, :, j] is e_j as a logit table
        W = Z - np.add.reduce(pi * Z, axis=1, keepdims=True)
        W *= self._d_pi[:, :, None]
        W -= pi * np.add.reduce(W, axis=1, keepdims=True)
        F = W.reshape(n, n)
        return F.dot

    def natural_gradient(self) -> np.ndarray:
        r"""Minimum-norm :math:`F^+ \nabla J` (:func:`pgexact.natural_gradient`, on this oracle's evaluation)."""
        return _natural_gradient(self.mdp, self.policy, self.theta, self.pi, self.evaluation)

    def surrogate(self, theta_new: Any) -> float:
        r"""Exact surrogate :math:`\bar A(\pi_{\theta'})` (equals :func:`pgexact.surrogate`)."""
        t = check_theta(theta_new, self.policy.n_params, name="theta_new")
        return _surrogate_value(self.policy, self.batch, t)

    def kl(self, theta_new: Any) -> float:
        r"""Exact :math:`E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s) \| \pi_{\theta'}(\cdot|s))`."""
        t = check_theta(theta_new, self.policy.n_params, name="theta_new")
        return _kl_and_gradient(self.policy, self.batch, t, self.pi)[0]

    def _kl_and_surrogate(self, theta_new: Any) -> tuple[float, Callable[[], float]]:
        r""":meth:`kl` of ``theta_new`` and a callable returning its :meth:`surrogate`, from one
        evaluation of :math:`\log\pi_{\theta'}` (the line search of :func:`trpo_step`)."""
        t = check_theta(theta_new, self.policy.n_params, name="theta_new")
        # the arithmetic of _log_softmax_rows, _kl_value and _surrogate_from_log_probs with the
        # ufunc reductions called directly (their wrappers cost more than the arithmetic here)
        y = _shifted(self.policy._masked_logits(t))
        logp = y - np.log(np.add.reduce(np.exp(y), axis=1, keepdims=True))
        with np.errstate(divide="ignore", over="ignore"):
            kl_s = np.add.reduce(rel_entr(self.pi, np.exp(logp)), axis=1)
        kl = float(self._nu_pos @ kl_s[self._pos])

        def surrogate() -> float:
            batch = self.batch
            log_ratio = logp[batch.states, batch.actions] - batch.logp_old
            with np.errstate(over="ignore"):
                w_ratio = np.exp(batch.log_weights + log_ratio)
            return float(np.add.reduce((w_ratio - batch.weights) * batch.advantages))

        return kl, surrogate

    def hessian(self) -> np.ndarray:
        r"""Exact dense Hessian :math:`\nabla^2 J(\theta)`, shape (n_params, n_params) (:func:`pgexact.hessian`)."""
        from ..exact.hessian import _check_hessian_memory, _dense_hessian
        from ..exact.second_order import _SecondOrder

        _check_hessian_memory(self.mdp, self.policy)
        return _dense_hessian(self.mdp, self.policy, self.theta, _SecondOrder(self.mdp, self.pi, None))

    def hessian_vector_product(self, v: Any) -> np.ndarray:
        r"""Exact :math:`\nabla^2 J(\theta)\, v`, shape (n_params,) (:func:`pgexact.hessian_vector_product`)."""
        from ..exact.hessian import _hvp
        from ..exact.second_order import _SecondOrder

        v = check_theta(v, self.policy.n_params, name="v")
        return _hvp(self.policy, _SecondOrder(self.mdp, self.pi, None), v)


class ExactSource:
    r"""Closed-form gradient source on a finite MDP: every answer is exact.

    Parameters
    ----------
    mdp : FiniteMDP
    policy : TabularSoftmax or LinearSoftmax

    Notes
    -----
    ``source.at(theta)`` evaluates the policy once (:func:`pgexact.evaluate`) and returns an
    :class:`ExactOracle`; the ``seed`` argument is accepted and ignored (nothing is random).
    The convenience methods :meth:`gradient`, :meth:`fisher_vector_product`,
    :meth:`surrogate` and :meth:`kl` build an oracle per call.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax, policy_gradient
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> src = ExactSource(mdp, TabularSoftmax(3, 2))
    >>> theta = np.linspace(-1, 1, 6)
    >>> bool(np.allclose(src.gradient(theta), policy_gradient(mdp, src.policy, theta), rtol=0, atol=1e-14))
    True
    >>> abs(src.kl(theta, theta)) < 1e-15  # KL of a policy from itself
    True
    """

    def __init__(self, mdp: FiniteMDP, policy: SoftmaxPolicy) -> None:
        self.mdp = check_mdp(mdp)
        self.policy = check_policy(self.mdp, policy)

    def __repr__(self) -> str:
        return f"ExactSource(mdp=<{self.mdp.n_states} states, {self.mdp.n_actions} actions>, policy={self.policy!r})"

    @property
    def n_params(self) -> int:
        """Length of θ."""
        return self.policy.n_params

    def at(self, theta: Any, seed: Any = None) -> ExactOracle:
        """The exact oracle at ``theta`` (shape (n_params,)); ``seed`` is ignored."""
        return ExactOracle(self.mdp, self.policy, theta)  # which validates theta

    # ---- convenience: one question, one oracle
    def gradient(self, theta: Any) -> np.ndarray:
        r""":math:`\nabla J(\theta)`, shape (n_params,)."""
        return self.at(theta).gradient

    def fisher_vector_product(self, theta: Any, v: Any) -> np.ndarray:
        r"""State-averaged :math:`F(\theta) v`, shape (n_params,)."""
        v = check_theta(v, self.n_params, name="v")
        return self.at(check_theta(theta, self.n_params)).fisher_vector_product(v)

    def surrogate(self, theta_old: Any, theta_new: Any) -> float:
        r"""Surrogate :math:`\bar A` of ``theta_new`` under the state distribution of ``theta_old``."""
        theta_old = check_theta(theta_old, self.n_params, name="theta_old")
        return self.at(theta_old).surrogate(theta_new)

    def kl(self, theta_old: Any, theta_new: Any) -> float:
        r""":math:`E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s) \| \pi_{new}(\cdot|s))` (old first)."""
        theta_old = check_theta(theta_old, self.n_params, name="theta_old")
        return self.at(theta_old).kl(theta_new)

    # ---- exact references for train()
    def exact_J(self, theta: Any) -> float:
        """Exact J(θ) (:func:`pgexact.evaluate`)."""
        return evaluate(self.mdp, self.policy.probs(theta)).J

    def exact_kl(self, theta_old: Any, theta_new: Any) -> float:
        """Exact KL moved, :math:`E_{s\\sim d_{old}} KL(\\pi_{old} \\| \\pi_{new})`."""
        return self.kl(theta_old, theta_new)
