r"""Plain-numpy reference implementation of every :class:`~pgexact.conformance.Convention`.

Two halves, kept apart so that a user's update function can be audited on the same streams:

* :func:`simulate` — a vector environment of ``n_envs`` copies of
  ``pgexact.gym.make_env(mdp, max_episode_steps=time_limit)`` stepped together (vectorized over
  environments), under gymnasium's same-step, next-step or disabled autoreset, yielding one
  :class:`~pgexact.conformance.TransitionBatch` per batch of one continuous stream;
* :func:`reference_update` — one batch's update under a convention, computed row by row from
  the batch as a library's buffer does (δ per row from the flags, GAE backwards over the rows,
  the mean over rows of :math:`\omega_j(\hat A_j \nabla\log\pi(a_j|s_j) + c_{\text{ent}}\nabla H)`).

:func:`collect` joins them into a driver (the ``"reference"`` driver of
:func:`~pgexact.conformance.audit`). The exact expectation of these updates is
:func:`~pgexact.conformance.expected_update`; the two share no code.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from .._random import as_generator
from .._validation import as_float_array, check_memory, check_positive_int
from ..models.finite_mdp import FiniteMDP, check_mdp, check_pi
from ..policies import softmax_rows
from ._driver import DriverRun, TransitionBatch
from .convention import Convention

__all__ = ["simulate", "reference_update", "grouped_updates", "collect", "NAME", "LIBRARY"]

NAME = "reference"
LIBRARY = "pgexact.conformance.reference"


def _cdf_rows(p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=-1)
    c[..., -1] = np.inf  # rounding never sends a draw past the last category
    return c


def simulate(mdp: FiniteMDP, pi: Any, *, time_limit: int, n_envs: int, n_steps: int, n_batches: int,
             autoreset: str = "same_step", seed: Any) -> Iterator[TransitionBatch]:
    r"""Batches of one continuous stream of ``n_envs`` environments (see :class:`TransitionBatch`).

    At each step every environment draws :math:`a \sim \pi(\cdot|o)`; a regular step pays
    ``r[o, a]`` and moves to :math:`s' \sim P(\cdot|o, a)`, ``terminated`` on entering a terminal
    state, else ``truncated`` when the time in episode reaches ``time_limit``. After an episode
    ends: ``"same_step"``/``"disabled"`` return the reset observation :math:`s_0 \sim \mu_0` at
    once (``final_obs`` holds :math:`s'`); ``"next_step"`` returns :math:`s'`, and the next step
    ignores the action and returns :math:`s_0` with reward 0 and both flags False
    (gymnasium ≥ 1.0's ``AutoresetMode.NEXT_STEP``).

    Parameters
    ----------
    mdp : FiniteMDP
        Dense transitions (a sparse ``P`` is densified when S·A·S ≤ 10⁷).
    pi : array_like, shape (S, A), or (policy, theta)
    time_limit, n_envs, n_steps, n_batches : int
    autoreset : {"same_step", "next_step", "disabled"}
    seed : int, SeedSequence or Generator

    Yields
    ------
    TransitionBatch
        Arrays of shape (n_steps, n_envs).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import gridworld
    >>> mdp = gridworld(2, 2, gamma=0.9)
    >>> b = next(simulate(mdp, np.full((4, 4), 0.25), time_limit=3, n_envs=5, n_steps=4,
    ...                   n_batches=1, seed=0))
    >>> b.obs.shape, bool((b.episode_step < 3).all())
    ((4, 5), True)
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    T = check_positive_int("time_limit", time_limit)
    E = check_positive_int("n_envs", n_envs)
    n = check_positive_int("n_steps", n_steps)
    B = check_positive_int("n_batches", n_batches)
    if not (isinstance(autoreset, str) and autoreset in ("same_step", "next_step", "disabled")):
        raise ValueError(f"autoreset must be 'same_step', 'next_step' or 'disabled', got {autoreset!r}")
    S, A = mdp.n_states, mdp.n_actions
    check_memory(f"simulate with n_envs={E}, n_steps={n}", 8.0 * 10 * E * (n + S), "lower n_envs or n_steps")
    if mdp.is_sparse:
        if S * A * S > 10**7:
            raise ValueError(f"the reference simulator densifies P: S*A*S = {S * A * S} > 1e7 entries")
        P = mdp.P.toarray().reshape(S, A, S)
    else:
        P = mdp.P
    rng = as_generator(seed)
    return _simulate(mdp, pi, P, rng, T, E, n, B, autoreset)


def _simulate(mdp, pi, P, rng, T, E, n, B, autoreset) -> Iterator[TransitionBatch]:
    cdf_pi, cdf_P, cdf_mu = _cdf_rows(pi), _cdf_rows(P), _cdf_rows(mdp.mu0)
    r, terminal = mdp.r, mdp.terminal
    obs = np.searchsorted(cdf_mu, rng.random(E), side="right")
    k = np.zeros(E, dtype=np.int64)
    pending = np.zeros(E, dtype=bool)
    nxt = autoreset == "next_step"
    for _ in range(B):
        rec = {name: np.empty((n, E), dtype=dt) for name, dt in (
            ("obs", np.int64), ("actions", np.int64), ("rewards", np.float64), ("next_obs", np.int64),
            ("final_obs", np.int64), ("terminated", bool), ("truncated", bool), ("episode_step", np.int64))}
        for j in range(n):
            ua, us, u0 = rng.random(E), rng.random(E), rng.random(E)
            a = (ua[:, None] >= cdf_pi[obs]).sum(axis=1)
            s2 = (us[:, None] >= cdf_P[obs, a]).sum(axis=1)
            s0 = np.searchsorted(cdf_mu, u0, side="right")
            rew = r[obs, a]
            kk = k + 1
            term = terminal[s2]
            trunc = ~term & (kk >= T)
            rec["obs"][j], rec["actions"][j], rec["episode_step"][j] = obs, a, k
            if nxt:
                dummy = pending
                rew = np.where(dummy, 0.0, rew)
                s2 = np.where(dummy, s0, s2)
                term = term & ~dummy
                trunc = trunc & ~dummy
                rec["next_obs"][j] = s2
                rec["final_obs"][j] = s2
                pending = term | trunc
                k = np.where(dummy, 0, kk)
                obs = s2
            else:
                ended = term | trunc
                ret = np.where(ended, s0, s2)
                rec["next_obs"][j] = ret
                rec["final_obs"][j] = s2
                k = np.where(ended, 0, kk)
                obs = ret
            rec["rewards"][j], rec["terminated"][j], rec["truncated"][j] = rew, term, trunc
        yield TransitionBatch(**rec)


def reference_update(batch: TransitionBatch, logits: Any, values: Any, convention: Convention, *,
                     minibatch_size: int = 64, seed: Any = 0) -> np.ndarray:
    r"""One batch's update :math:`-\partial L/\partial\,\text{logits}` under ``convention``, shape (S, A).

    Row by row (:math:`o'` = ``next_obs``, :math:`s_T` = ``final_obs``):

    * terminated: :math:`\delta = r - V(s)`, cut;
    * truncated: ``"bootstrap"`` :math:`r + \gamma V(s_T) - V(s)`, cut; ``"terminate"``
      :math:`r - V(s)`, cut; ``"reset_obs"`` :math:`r + \gamma V(o') - V(s)`, cut; ``"cross"``
      :math:`r + \gamma V(o') - V(s)`, no cut;
    * otherwise :math:`r + \gamma V(o') - V(s)` (next-step reset rows included), no cut;
    * the last row, if not cut, uses :math:`r - V(s)` when ``bootstrap_end`` is False; it is cut.

    :math:`\hat A_j = \delta_j + \gamma\lambda(1 - \text{cut}_j)\hat A_{j+1}`, optionally
    standardized (``"batch"``: over all rows; ``"minibatch"``: within minibatches of
    ``minibatch_size`` rows of a random permutation, the last one shorter), and

    .. math::

        \text{update}[s] = \frac{1}{N}\sum_{j:\,s_j = s} \omega_j\bigl(\hat A_j (e_{a_j} - \pi_s)
            - c_{\text{ent}}\, \pi_s \odot (\log\pi_s + H(\pi_s))\bigr).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import gridworld
    >>> mdp = gridworld(2, 2, gamma=0.9)
    >>> c = Convention(gamma=0.9, time_limit=3, n_envs=2, n_steps=4)
    >>> b = next(simulate(mdp, np.full((4, 4), 0.25), time_limit=3, n_envs=2, n_steps=4,
    ...                   n_batches=1, seed=0))
    >>> u = reference_update(b, np.zeros((4, 4)), np.zeros(4), c)
    >>> bool(np.allclose(u.sum(axis=1), 0))  # softmax logits: each row of the update sums to 0
    True
    """
    logits, V = _check_inputs(batch, logits, values, convention)
    minibatch_size = check_positive_int("minibatch_size", minibatch_size)
    adv = _advantages(batch, V, convention)
    c = convention
    n, E = batch.n_steps, batch.n_envs
    if c.normalize_advantages == "batch":
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    elif c.normalize_advantages == "minibatch":
        flat = adv.reshape(-1).copy()
        perm = as_generator(seed).permutation(flat.size)
        for lo in range(0, flat.size, minibatch_size):
            idx = perm[lo: lo + minibatch_size]
            if idx.size > 1:
                flat[idx] = (flat[idx] - flat[idx].mean()) / (flat[idx].std() + 1e-8)
        adv = flat.reshape(n, E)
    return _aggregate(batch, adv, softmax_rows(logits), c, 1)[0]


def _check_inputs(batch: Any, logits: Any, values: Any, convention: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(batch, TransitionBatch):
        raise TypeError(f"batch must be a pgexact.conformance.TransitionBatch, got {type(batch).__name__}")
    if not isinstance(convention, Convention):
        raise TypeError(f"convention must be a pgexact.conformance.Convention, got {type(convention).__name__}")
    logits = as_float_array("logits", logits)
    V = as_float_array("values", values)
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 1:
        raise ValueError(f"logits must have shape (S, A), got {logits.shape}")
    if V.shape != (logits.shape[0],):
        raise ValueError(f"values must have shape (S,) = ({logits.shape[0]},) as logits, got {V.shape}")
    if np.abs(logits).max() > 700 or np.abs(V).max() > 1e100:
        raise ValueError("logits must lie within +-700 and values within +-1e100 (softmax and GAE overflow beyond)")
    S, A = logits.shape
    for name, bound in (("obs", S), ("next_obs", S), ("final_obs", S), ("actions", A)):
        arr = getattr(batch, name)
        if arr.max() >= bound:
            idx = np.unravel_index(int(np.argmax(arr)), arr.shape)
            raise ValueError(f"batch.{name}{list(int(i) for i in idx)} is {arr[idx]}, expected < {bound} "
                             "(the logits' shape)")
    if np.abs(batch.rewards).max() > 1e100 or batch.episode_step.max() > 10**9:
        raise ValueError("batch.rewards must lie within +-1e100 and batch.episode_step below 1e9")
    return logits, V


def _advantages(batch: TransitionBatch, V: np.ndarray, c: Convention) -> np.ndarray:
    """GAE(λ) advantages (n_steps, n_envs) of the rows, from the flags as the convention reads them."""
    g, lam = c.gamma, c.lam
    n, E = batch.n_steps, batch.n_envs
    o, rew = batch.obs, batch.rewards
    nobs, fobs, term, trunc = batch.next_obs, batch.final_obs, batch.terminated, batch.truncated
    delta = rew + g * V[nobs] - V[o]
    cut = term.copy()
    delta = np.where(term, rew - V[o], delta)
    if c.truncation == "bootstrap":
        delta = np.where(trunc, rew + g * V[fobs] - V[o], delta)
        cut |= trunc
    elif c.truncation == "terminate":
        delta = np.where(trunc, rew - V[o], delta)
        cut |= trunc
    elif c.truncation == "reset_obs":
        cut |= trunc
    if not c.bootstrap_end:
        delta[-1] = np.where(cut[-1], delta[-1], rew[-1] - V[o[-1]])
    adv = np.empty((n, E))
    nxt = np.zeros(E)
    for j in range(n - 1, -1, -1):
        cont = 0.0 if j == n - 1 else 1.0
        adv[j] = delta[j] + g * lam * cont * np.where(cut[j], 0.0, nxt)
        nxt = adv[j]
    return adv


def _aggregate(batch: TransitionBatch, adv: np.ndarray, pi: np.ndarray, c: Convention, n_groups: int) -> np.ndarray:
    """Updates (n_groups, S, A) of consecutive equal groups of environments (columns)."""
    n, E = batch.n_steps, batch.n_envs
    S, A = pi.shape
    Eg = E // n_groups
    grp = np.broadcast_to(np.arange(E) // Eg, (n, E)).reshape(-1)
    omega = c.gamma ** batch.episode_step if c.weighting == "discounted" else np.ones((n, E))
    wa = (omega * adv).reshape(-1)
    so, ao = batch.obs.reshape(-1), batch.actions.reshape(-1)
    W = np.zeros((n_groups, S, A))
    np.add.at(W, (grp, so, ao), wa)  # sum_j w_j e_{a_j} at s_j
    tot = np.bincount(grp * S + so, weights=wa, minlength=n_groups * S).reshape(n_groups, S)
    upd = W - pi[None] * tot[:, :, None]
    if c.ent_coef != 0.0:
        logp = np.log(np.where(pi > 0, pi, 1.0))
        H = -(pi * logp).sum(axis=1)
        grad_H = -pi * (logp + H[:, None])  # d H / d logits
        cnt = np.bincount(grp * S + so, weights=omega.reshape(-1), minlength=n_groups * S).reshape(n_groups, S)
        upd += c.ent_coef * cnt[:, :, None] * grad_H[None]
    return upd / (n * Eg)


def grouped_updates(batch: TransitionBatch, logits: Any, values: Any, convention: Convention,
                    n_groups: int) -> np.ndarray:
    """:func:`reference_update` of each of ``n_groups`` equal groups of consecutive environments.

    Independent replicates of a stream in one simulation (calibration by simulation);
    advantages are not normalized (``normalize_advantages`` must be False).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import gridworld
    >>> mdp = gridworld(2, 2, gamma=0.9)
    >>> c = Convention(gamma=0.9, time_limit=3, n_envs=2, n_steps=4)
    >>> b = next(simulate(mdp, np.full((4, 4), 0.25), time_limit=3, n_envs=4, n_steps=4,
    ...                   n_batches=1, seed=0))
    >>> g = grouped_updates(b, np.zeros((4, 4)), np.ones(4), c, 2)
    >>> bool(np.allclose(g.mean(axis=0), reference_update(b, np.zeros((4, 4)), np.ones(4), c)))
    True
    """
    logits, V = _check_inputs(batch, logits, values, convention)
    if convention.normalize_advantages:
        raise ValueError("grouped_updates needs convention.normalize_advantages=False (normalization spans the groups)")
    n_groups = check_positive_int("n_groups", n_groups)
    if batch.n_envs % n_groups:
        raise ValueError(f"batch.n_envs={batch.n_envs} is not a multiple of n_groups={n_groups}")
    return _aggregate(batch, _advantages(batch, V, convention), softmax_rows(logits), convention, n_groups)


def collect(mdp: FiniteMDP, logits: Any, values: Any, *, time_limit: int, n_envs: int, n_steps: int,
            n_batches: int, seed: Any, convention: Convention | None = None,
            update_fn: Callable[[TransitionBatch], Any] | None = None, **convention_fields: Any) -> DriverRun:
    r"""The reference driver: :func:`simulate` then :func:`reference_update` (or ``update_fn``) per batch.

    Parameters
    ----------
    mdp : FiniteMDP
    logits : array_like, shape (S, A)
        Tabular softmax actor.
    values : array_like, shape (S,)
        Frozen critic.
    time_limit, n_envs, n_steps, n_batches : int
    seed : int, SeedSequence or Generator
    convention : Convention, optional
        Default: ``Convention(**convention_fields)`` with the sizes above (and
        ``gamma=mdp.gamma``).
    update_fn : callable, optional
        ``update_fn(batch) -> (S, A)`` replaces :func:`reference_update` (a user's update
        function audited on the same streams).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import gridworld
    >>> mdp = gridworld(2, 2, gamma=0.9)
    >>> run = collect(mdp, np.zeros((4, 4)), np.zeros(4), time_limit=3, n_envs=2, n_steps=4,
    ...               n_batches=3, seed=0)
    >>> run.updates.shape, run.library
    ((3, 4, 4), 'pgexact.conformance.reference')
    """
    mdp = check_mdp(mdp)
    logits = as_float_array("logits", logits)
    if logits.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"logits must have shape (S, A) = ({mdp.n_states}, {mdp.n_actions}), got {logits.shape}")
    values = as_float_array("values", values)
    if values.shape != (mdp.n_states,):
        raise ValueError(f"values must have shape (S,) = ({mdp.n_states},), got {values.shape}")
    if convention is None:
        convention_fields.setdefault("gamma", mdp.gamma)
        convention = Convention(time_limit=time_limit, n_envs=n_envs, n_steps=n_steps, **convention_fields)
    elif convention_fields:
        raise TypeError("pass either convention or convention fields, not both")
    pi = softmax_rows(logits)
    ss = np.random.SeedSequence(int(seed)) if isinstance(seed, (int, np.integer)) else seed
    sim_seed, norm_seed = (ss.spawn(2) if isinstance(ss, np.random.SeedSequence) else (ss, ss))
    norm_rng = as_generator(norm_seed)
    ups = []
    for b in simulate(mdp, pi, time_limit=time_limit, n_envs=n_envs, n_steps=n_steps, n_batches=n_batches,
                      autoreset=convention.autoreset, seed=sim_seed):
        if update_fn is None:
            ups.append(reference_update(b, logits, values, convention, seed=norm_rng))
        else:
            u = np.asarray(update_fn(b), dtype=np.float64)
            if u.shape != logits.shape:
                raise ValueError(f"update_fn returned shape {u.shape}, expected (S, A) = {logits.shape}")
            ups.append(u)
    return DriverRun(np.stack(ups), LIBRARY, "reference", convention.to_dict(), None)
