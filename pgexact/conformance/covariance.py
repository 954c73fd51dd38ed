r"""The exact covariance of one batch's update, by enumeration of one environment's paths (tiny instances).

The ``n_envs`` environments of a stream are independent copies, and one batch's (un-normalized)
update is the mean of the environments' own updates
:math:`u_e = \frac1n\sum_{j<n}\omega_j\,(\hat A_j\,(e_{a_j} - \pi_{s_j}) - c_{\text{ent}}\,\pi_{s_j}\odot(\log\pi_{s_j} + H(\pi_{s_j})))`
(in the logits of a tabular softmax), so

.. math::

    \operatorname{Cov}[\text{update}] = \frac{1}{n_{\text{envs}}}\operatorname{Cov}[u_e]
    = \frac{1}{n_{\text{envs}}}\sum_{\text{paths } x} p(x)\,(u(x) - \bar u)(u(x) - \bar u)^\top .

:func:`batch_covariance` enumerates every path :math:`x` of one environment through the batch's
``n_steps`` rows — each step branches on the action :math:`a \sim \pi(\cdot|o)`, the next state
:math:`s' \sim P(\cdot|o, a)` and, where an episode ends (or, under next-step autoreset, on a
reset row), the reset state :math:`s_0 \sim \mu_0`; zero-probability branches are pruned — with
its exact probability :math:`p(x)`, forms each path's update with the reference buffer
(:func:`~pgexact.conformance.reference.grouped_updates`, one path per column) and takes the
exact mean and covariance. For a batch ``b > 0`` the law of (state, time in episode, pending
reset) at the batch's first step is propagated exactly over the ``b·n`` earlier steps (paths
merged by that triple). The cost is the number of paths, at most
:math:`(A\,\max_{s,a}|\mathrm{supp}\,P(\cdot|s,a)|\,|\mathrm{supp}\,\mu_0|)^{n}`: tiny instances
only (a call over ``max_paths`` paths is refused, naming the count).

Not covered: normalized advantages (``normalize_advantages`` must be False: the per-batch
standardization makes the update a ratio, whose law the enumeration would still give but which
the reference computes over all environments jointly), ``(policy, theta)`` parametrizations
(the covariance in θ is :math:`J^\top \mathrm{Cov}[w\text{-form}]\, J`; only the logits form is
returned), and problems beyond enumeration (no second-moment recursion is implemented).

Sources: the law of total variance over independent environments; GAE, Schulman et al.
(2016), eq. 16; course notes "Policy gradient methods", section "Advantage estimation".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_float_array, check_memory, check_positive_int
from ..exact.evaluation import _evaluate
from ..models.finite_mdp import FiniteMDP, check_mdp
from ..policies.softmax import softmax_rows
from ._driver import TransitionBatch
from .convention import Convention
from .reference import grouped_updates

__all__ = ["BatchCovariance", "batch_covariance"]

#: Paths enumerated at most (memory about 100 bytes per path and row).
MAX_PATHS = 2_000_000


@dataclass(frozen=True, eq=False)
class BatchCovariance:
    r"""The exact law of one batch's update, from the enumeration of one environment's paths.

    Attributes
    ----------
    mean : numpy.ndarray, shape (S, A)
        :math:`\mathbb{E}[\text{update}]` (logits of a tabular softmax).
    covariance : numpy.ndarray, shape (S·A, S·A)
        :math:`\operatorname{Cov}[\text{update}]` of the batch (``n_envs`` environments), over
        the flattened ``(s, a)`` coordinates.
    probabilities : numpy.ndarray, shape (n_paths,)
        :math:`p(x)` of each path of one environment (sums to 1).
    env_updates : numpy.ndarray, shape (n_paths, S, A)
        :math:`u(x)`, the update of one environment on each path (exact higher moments:
        :math:`\sum_x p(x) f(u(x))`).
    convention : Convention
    batch : int
    """

    mean: np.ndarray
    covariance: np.ndarray
    probabilities: np.ndarray
    env_updates: np.ndarray
    convention: Convention
    batch: int

    def __post_init__(self) -> None:
        for name in ("mean", "covariance", "probabilities", "env_updates"):
            arr = getattr(self, name)
            if isinstance(arr, np.ndarray):  # a plain record: anything else is stored as given
                arr.flags.writeable = False


def _expand(mdp: FiniteMDP, P: np.ndarray, pi: np.ndarray, T: int, nxt: bool,
            prob: np.ndarray, obs: np.ndarray, k: np.ndarray, pending: np.ndarray, max_paths: int, where: str):
    """Every one-step continuation of every path: (parent, a, s', s0, prob, recorded fields, new state)."""
    S, A = mdp.n_states, mdp.n_actions
    N = prob.size
    check_memory(f"batch_covariance expanding {N} paths {where} (S = {S}, A = {A})", 4 * 8.0 * N * A * S * S,
                 "lower n_steps, time_limit or the batch index, or use a smaller problem")
    p_a = pi[obs]  # (N, A)
    if nxt:
        dummy = pending
    else:
        dummy = np.zeros(N, dtype=bool)
    # the next-state factor: P(s'|o, a), or on a reset row the canonical s' = 0 with probability 1
    f2 = np.where(dummy[:, None, None], (np.arange(S) == 0)[None, None, :], P[obs])  # (N, A, S)
    kk = k + 1
    term = mdp.terminal[None, :] & ~dummy[:, None]  # (N, S) by s'
    trunc = ~mdp.terminal[None, :] & (kk[:, None] >= T) & ~dummy[:, None]
    ended = term | trunc
    needs_s0 = dummy[:, None] | (ended if not nxt else np.zeros_like(ended))  # (N, S)
    f0 = np.where(needs_s0[:, :, None], mdp.mu0[None, None, :], (np.arange(S) == 0)[None, None, :])  # (N, S, S0)
    weight = prob[:, None, None, None] * p_a[:, :, None, None] * f2[:, :, :, None] * f0[:, None, :, :]
    nz = np.flatnonzero(weight)
    if nz.size > max_paths:
        raise ValueError(f"batch_covariance would enumerate {nz.size} paths {where}, more than max_paths="
                         f"{max_paths}: lower n_steps, time_limit or the batch index, or use a smaller problem")
    parent, a, s2, s0 = np.unravel_index(nz, weight.shape)
    new_prob = weight.reshape(-1)[nz]
    d = dummy[parent]
    rew = np.where(d, 0.0, mdp.r[obs[parent], a])
    t_ = term[parent, s2]
    tr_ = trunc[parent, s2]
    if nxt:
        s2 = np.where(d, s0, s2)
        next_obs = final_obs = s2
        new_pending = t_ | tr_
        new_k = np.where(d, 0, kk[parent])
        new_obs = s2
    else:
        e = t_ | tr_
        next_obs = np.where(e, s0, s2)
        final_obs = s2
        new_pending = np.zeros(nz.size, dtype=bool)
        new_k = np.where(e, 0, kk[parent])
        new_obs = next_obs
    row = dict(obs=obs[parent], actions=a, rewards=rew, next_obs=next_obs, final_obs=final_obs,
               terminated=t_, truncated=tr_, episode_step=k[parent])
    return parent, new_prob, row, new_obs, new_k, new_pending


def batch_covariance(mdp: FiniteMDP, logits: Any, convention: Convention, *, values: Any = None,
                     batch: int = 0, max_paths: int = MAX_PATHS) -> BatchCovariance:
    r"""The exact mean and covariance of one batch's update under ``convention`` (see the module docstring).

    .. math::

        \operatorname{Cov}[\text{update}] = \frac{1}{n_{\text{envs}}}\sum_x p(x)\,
            (u(x) - \bar u)(u(x) - \bar u)^\top,\qquad \bar u = \sum_x p(x)\, u(x)

    Parameters
    ----------
    mdp : FiniteMDP
        Dense (or sparse and small); episodes end on entering ``mdp.terminal`` states or after
        ``convention.time_limit`` steps.
    logits : array_like, shape (S, A)
        Logits of the tabular softmax actor that collects the batch.
    convention : Convention
        ``normalize_advantages`` must be False.
    values : array_like, shape (S,), optional
        The frozen critic (default: the exact discounted :math:`V^\pi`).
    batch : int
        Batch index b (every environment reset at stream step 0).
    max_paths : int
        Refuse enumerations with more paths of one environment.

    Returns
    -------
    BatchCovariance

    Examples
    --------
    The mean is the exact expected update:

    >>> import numpy as np
    >>> from pgexact.mdps import gridworld
    >>> from pgexact.conformance import Convention, expected_update
    >>> mdp = gridworld(2, 2, gamma=0.9, slip=0.2)
    >>> c = Convention(gamma=0.9, lam=0.8, time_limit=3, n_envs=8, n_steps=4)
    >>> z = np.zeros((4, 4))
    >>> bc = batch_covariance(mdp, z, c)
    >>> e = expected_update(mdp, np.full((4, 4), 0.25), c, batch=0)
    >>> bool(np.allclose(bc.mean, e.update, rtol=0, atol=1e-14)), bc.covariance.shape
    (True, (16, 16))
    """
    mdp = check_mdp(mdp)
    if not isinstance(convention, Convention):
        raise TypeError(f"convention must be a pgexact.conformance.Convention, got {type(convention).__name__}")
    if convention.normalize_advantages:
        raise ValueError(f"convention.normalize_advantages is {convention.normalize_advantages!r}: the exact "
                         "covariance covers un-normalized updates only (set normalize_advantages=False)")
    z = as_float_array("logits", logits)
    S, A = mdp.n_states, mdp.n_actions
    if z.shape != (S, A):
        raise ValueError(f"logits must have shape (S, A) = ({S}, {A}), got {z.shape}")
    if not np.all(np.abs(z) <= 700):
        i = int(np.flatnonzero(~(np.abs(z) <= 700))[0])
        raise ValueError(f"logits[{i // A}, {i % A}] is {z.flat[i]}, expected a finite value within +-700")
    if mdp.action_mask is not None:
        raise ValueError("batch_covariance does not cover MDPs with an action_mask (the reference buffer's "
                         "actor is an unmasked softmax of the logits)")
    pi = softmax_rows(z)
    if isinstance(batch, (bool, np.bool_)) or not isinstance(batch, (int, np.integer)) or batch < 0:
        raise ValueError(f"batch must be an int >= 0, got {batch!r}")
    batch = int(batch)
    max_paths = check_positive_int("max_paths", max_paths)
    if values is None:
        V = np.asarray(_evaluate(mdp, pi).V, dtype=np.float64)
    else:
        V = as_float_array("values", values)
        if V.shape != (S,):
            raise ValueError(f"values must have shape (S,) = ({S},), got {V.shape}")
    if mdp.is_sparse:
        if S * A * S > 10**7:
            raise ValueError(f"batch_covariance densifies P: S*A*S = {S * A * S} > 1e7 entries")
        P = mdp.P.toarray().reshape(S, A, S)
    else:
        P = np.asarray(mdp.P)
    c = convention
    T, n, nxt = c.time_limit, c.n_steps, c.autoreset == "next_step"
    if batch * n > 10**5:
        raise ValueError(f"batch_covariance propagates batch*n_steps = {batch * n} steps, more than 1e5: "
                         "lower the batch index")
    # the law of (obs, k, pending) at the first step of the batch
    prob = mdp.mu0[mdp.mu0 > 0].astype(np.float64)
    obs = np.flatnonzero(mdp.mu0 > 0)
    k = np.zeros(obs.size, dtype=np.int64)
    pending = np.zeros(obs.size, dtype=bool)
    for _ in range(batch * n):
        _, prob, _, obs, k, pending = _expand(mdp, P, pi, T, nxt, prob, obs, k, pending, max_paths,
                                              "before the batch")
        key = (obs * (T + 1) + k) * 2 + pending
        uniq, inv = np.unique(key, return_inverse=True)
        prob = np.bincount(inv, weights=prob, minlength=uniq.size)
        pending = (uniq % 2).astype(bool)
        k = (uniq // 2) % (T + 1)
        obs = uniq // 2 // (T + 1)
    rows: dict[str, np.ndarray] = {}
    for j in range(n):
        parent, prob, row, obs, k, pending = _expand(mdp, P, pi, T, nxt, prob, obs, k, pending, max_paths,
                                                     f"at row {j} of the batch")
        rows = {name: np.concatenate([rows[name][:, parent], row[name][None]]) if rows else row[name][None]
                for name in row}
    tb = TransitionBatch(**rows)
    U = grouped_updates(tb, z, V, c, prob.size)
    prob = prob / prob.sum()  # rounding of the products only
    mean = np.tensordot(prob, U, axes=1)
    D = (U - mean).reshape(prob.size, S * A)
    cov = (D * prob[:, None]).T @ D / c.n_envs
    return BatchCovariance(mean=mean, covariance=cov, probabilities=prob, env_updates=U, convention=c, batch=batch)
