r"""Theorems about the conformance core: the exact expected update of a library's batch.

:func:`pgexact.conformance.expected_update` computes :math:`\mathbb{E}[\text{update}]` of one batch under a
:class:`~pgexact.conformance.Convention` by a renewal recursion or by the augmented chain over (time in
episode, state). The reference enumerates every path of one environment through the batch's rows with its
exact probability, forms each path's update with the reference buffer
(:func:`pgexact.conformance.reference.grouped_updates`: δ per row from the flags, GAE backwards over the
rows) and averages (:func:`pgexact.conformance.batch_covariance`'s mean): the two share only the model's
data, the policy and the critic.

The reference vector environment (:func:`pgexact.conformance.reference.simulate`) is checked by the
frequencies of (row, time in episode, state, truncated) over independent environments against the forward
law of the chain over (time in episode, state) with its resets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..conformance import Convention, batch_covariance, expected_update
from ..models.finite_mdp import FiniteMDP
from .registry import identity, statistical

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []


@dataclass(frozen=True)
class ConformanceProblem:
    mdp: FiniteMDP
    logits: np.ndarray
    values: np.ndarray
    renewal: tuple  # same-step autoreset, truncation bootstrap, terminate and reset_obs
    chain: Convention  # next-step autoreset or cross-episode GAE
    batch: int


def _instance(rng: np.random.Generator) -> ConformanceProblem:
    """3 states (the last terminal, entered with a probability in [0.05, 0.4] that depends on the state and
    the action: a term proportional to it would otherwise cancel in the logits' update), 2 actions; a random critic (so that every bootstrap shows); time limit 2..3, 3 rows per batch,
    batch 0 or 1; random conventions: three of the renewal computation (one per truncation rule, the other
    fields shared) and one of the chain only."""
    S, A = 3, 2
    P = np.zeros((S, A, S))
    for s in range(S - 1):
        for a in range(A):
            end = float(rng.uniform(0.05, 0.4))  # differs across actions: terms in Pr(s' not terminal) show
            P[s, a, : S - 1] = rng.dirichlet(np.ones(S - 1)) * (1.0 - end)
            P[s, a, S - 1] = end
    P[S - 1, :, S - 1] = 1.0
    r = rng.standard_normal((S, A))
    r[S - 1] = 0.0
    mu0 = np.array([0.6, 0.4, 0.0])
    mdp = FiniteMDP(P, r, mu0, gamma=0.9)
    common = dict(n_envs=1, n_steps=3, time_limit=int(rng.integers(2, 4)))

    def fields() -> dict:
        return dict(weighting=str(rng.choice(["uniform", "discounted"])), lam=float(rng.uniform(0.3, 0.95)),
                    gamma=float(rng.uniform(0.5, 0.95)), ent_coef=float(rng.choice([0.0, 0.1])),
                    bootstrap_end=bool(rng.integers(2)), **common)

    shared = fields()
    renewal = tuple(Convention(truncation=t, autoreset="same_step", **shared)
                    for t in ("bootstrap", "terminate", "reset_obs"))
    if rng.integers(2):
        chain = Convention(truncation=str(rng.choice(["bootstrap", "terminate", "reset_obs", "cross"])),
                           autoreset="next_step", **fields())
    else:
        chain = Convention(truncation="cross", autoreset="same_step", **fields())
    return ConformanceProblem(mdp, rng.standard_normal((S, A)), rng.standard_normal(S), renewal, chain,
                              int(rng.integers(2)))


def _pi(pr: ConformanceProblem) -> np.ndarray:
    z = np.exp(pr.logits - pr.logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _computed(pr: ConformanceProblem) -> tuple[np.ndarray, ...]:
    pi = _pi(pr)
    kw = dict(values=pr.values, batch=pr.batch)
    out = []
    for c in pr.renewal:
        out += [expected_update(pr.mdp, pi, c, method="renewal", **kw).update,
                expected_update(pr.mdp, pi, c, method="chain", **kw).update]
    return tuple(out) + (expected_update(pr.mdp, pi, pr.chain, **kw).update,)


def _enumerated(pr: ConformanceProblem, renewal: tuple | None = None, chain: Convention | None = None):
    renewal, chain = renewal or pr.renewal, chain or pr.chain
    out = []
    for c in renewal:
        mean = batch_covariance(pr.mdp, pr.logits, c, values=pr.values, batch=pr.batch).mean
        out += [mean, mean]
    return tuple(out) + (batch_covariance(pr.mdp, pr.logits, chain, values=pr.values, batch=pr.batch).mean,)


def _expected(pr: ConformanceProblem) -> tuple[np.ndarray, ...]:
    return _enumerated(pr)


def _dropped_lambda(pr: ConformanceProblem) -> tuple[np.ndarray, ...]:
    """The mistake of GAE with gamma in place of gamma * lambda (lambda = 1), in both conventions."""
    return _enumerated(pr, tuple(c.replace(lam=1.0) for c in pr.renewal), pr.chain.replace(lam=1.0))


def _uniform_instead_of_discounted(pr: ConformanceProblem) -> tuple[np.ndarray, ...]:
    """The mistake of weighting rows uniformly whatever the convention says (and discounted where it says
    uniform)."""
    flip = {"uniform": "discounted", "discounted": "uniform"}
    return _enumerated(pr, tuple(c.replace(weighting=flip[c.weighting]) for c in pr.renewal),
                       pr.chain.replace(weighting=flip[pr.chain.weighting]))


identity(
    id="conformance.expected_update",
    statement=r"\mathbb{E}[\text{update}] = \sum_{\text{paths } x} p(x)\,u(x),\quad "
    r"u(x) = \frac1n\sum_{j<n}\omega_j\big(\hat A_j (e_{a_j} - \pi_{s_j}) + c_{\text{ent}}\nabla H(\pi_{s_j})\big)",
    source="GAE, Schulman et al. 2016, 'High-dimensional continuous control using generalized advantage "
    "estimation', eq. 16; the renewal equation, Feller 1968, vol. 1, ch. XIII; course notes 'Policy gradient "
    "methods', section 'Advantage estimation'",
    reference="enumeration of every path of one environment through the batch's rows with its exact "
    "probability (pgexact.conformance.batch_covariance's mean), each path's update formed row by row by the "
    "reference buffer (pgexact.conformance.reference.grouped_updates); computed: expected_update by the "
    "renewal recursion and by the chain for same-step conventions with each truncation rule (bootstrap, "
    "terminate, reset_obs), and by the chain for a next-step or cross-episode one",
    instance=_instance,
    computed=_computed,
    expected=_expected,
    tolerance=1e-12,
    tolerance_reason="sums of at most a few thousand path terms and recursions of <= 6 steps on values of "
    "order 1: |error| <= 1e3 eps ~ 2e-13 absolute (floor 1); measured below 1e-15",
    mutants={
        "GAE with gamma instead of gamma * lambda": _dropped_lambda,
        "rows weighted uniformly where the convention says discounted (and the reverse)":
            _uniform_instead_of_discounted,
    },
    default_instances=5,
)


# ----------------------------------------------------------------------------- the reference environment
N_ENVS = 4000  # environments of the simulated stream (independent copies: the trials of every cell)
N_ROWS = 6  # rows of one batch


def _stream_instance(rng: np.random.Generator) -> tuple[ConformanceProblem, int]:
    """A problem of :func:`_instance` with a time limit of 2..3 (episodes end by truncation and by termination
    within the batch) and a seed."""
    return _instance(rng), int(rng.integers(2**31))


def _stream_counts(inst: tuple[ConformanceProblem, int], time_limit_shift: int = 0):
    r"""Cells (row j, time in episode k, state s, truncated) of batch 0 of the reference vector environment
    (same-step autoreset): ``counts[j, k, s, f]`` environments, out of N_ENVS, with ``episode_step = k``,
    ``obs = s`` and ``truncated = f`` at row j; k runs to the time limit (a time limit one step late shows
    as cells of probability 0)."""
    from ..conformance.reference import simulate

    pr, seed = inst
    T = pr.chain.time_limit
    S = pr.mdp.n_states
    batch = next(simulate(pr.mdp, _pi(pr), time_limit=T + time_limit_shift, n_envs=N_ENVS, n_steps=N_ROWS,
                          n_batches=1, seed=seed))
    k = np.minimum(batch.episode_step, T)
    idx = ((np.arange(N_ROWS)[:, None] * (T + 1) + k) * S + batch.obs) * 2 + batch.truncated
    return np.bincount(idx.reshape(-1), minlength=N_ROWS * (T + 1) * S * 2).reshape(N_ROWS, T + 1, S, 2), N_ENVS


def _stream_expected(inst: tuple[ConformanceProblem, int]) -> np.ndarray:
    r"""Forward propagation of the law of (time in episode k, state s) from :math:`(0, \mu_0)`: a step from
    (k, s) takes a ~ π(·|s), s' ~ P(·|s, a); it ends the episode when s' is terminal (terminated) or when
    k + 1 reaches the time limit (truncated, unless terminated), and the environment then restarts at
    :math:`(0, s_0 \sim \mu_0)`; else it continues at (k + 1, s')."""
    pr, _ = inst
    mdp, pi = pr.mdp, _pi(pr)
    T, S = pr.chain.time_limit, mdp.n_states
    P = np.einsum("sa,sat->st", pi, np.asarray(mdp.P))  # P_pi
    terminal = np.asarray(mdp.terminal)
    law = np.zeros((T + 1, S))
    law[0] = mdp.mu0
    out = np.zeros((N_ROWS, T + 1, S, 2))
    for j in range(N_ROWS):
        nxt = np.zeros((T + 1, S))
        for k in range(T):
            flow = law[k][:, None] * P  # (s, s')
            ends_by_time = k + 1 >= T
            truncated_mass = flow[:, ~terminal].sum(axis=1) if ends_by_time else np.zeros(S)
            out[j, k, :, 1] = truncated_mass
            out[j, k, :, 0] = law[k] - truncated_mass
            ended = flow[:, terminal].sum() + truncated_mass.sum()
            nxt[0] += ended * mdp.mu0
            if not ends_by_time:
                nxt[k + 1] += flow.sum(axis=0) * ~terminal
        law = nxt
    return out


statistical(
    id="conformance.reference_stream",
    statement=r"\Pr(k_j = k, s_j = s, \text{truncated}_j) \text{ in the reference vector environment} = "
    r"\text{the forward law of the chain over (time in episode, state) with resets at termination and at the time limit}",
    source="gymnasium's TimeLimit and same-step autoreset (the environment the conformance drivers step); "
    "course notes 'Policy gradient methods', section 'Advantage estimation' (truncation versus termination)",
    reference=f"forward propagation, written here from the model's data, of the law of (time in episode, "
    f"state) with resets; frequencies over {N_ENVS} independent environments of "
    f"pgexact.conformance.reference.simulate, every (row, k, s, truncated) cell of {N_ROWS} rows",
    instance=_stream_instance,
    observed=_stream_counts,
    expected=_stream_expected,
    mutants={"time limit one step late": lambda inst: _stream_counts(inst, time_limit_shift=1)},
    power_note=f"a time limit one step late puts about 0.8 * 0.8 of the mass of row T - 1 on cells of "
    f"probability 0 (k = T, or not truncated at k = T - 1): observed with n = {N_ENVS}, statistic inf",
    default_instances=5,
)
