r"""Theorems about the sampler: alias tables, rollout marginals, geometric stopping.

The alias-table theorem is exact: the distribution a table encodes is recomputed from its
thresholds and aliases (column j yields its own outcome with probability :math:`q_j/K` and its
alias with probability :math:`(1-q_j)/K`) and compared with the probabilities it was built from.
The rollout theorems are statistical: frequencies of :func:`pgexact.rollout` against exact
probabilities from forward propagation of the model's data, with the Chernoff statistic of
:func:`~pgexact.theorems.registry.bernoulli_statistic` (false alarm at most 1e-6 per instance,
whatever the sample size; no normal approximation).

Instances: random dense MDPs with 2..5 states, 2..3 actions, Dirichlet(0.1) transition rows
(peaked, so that mistakes move probabilities far), softmax policies with logits N(0, 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import sampling
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from . import _reference as ref
from .registry import identity, statistical

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`; the instance generators and references below serve
#: those theorems and the tests.
__all__: list[str] = []

N_EPISODES = 50_000
N_GEOMETRIC = 10_000  # geometric episodes are ~1/(1-gamma) <= 10 steps long on average
T_CUT = 6  # time steps checked under geometric stopping


@dataclass(frozen=True)
class SamplerProblem:
    mdp: FiniteMDP
    pi: np.ndarray
    seed: int


def _instance(rng: np.random.Generator, *, horizon: bool = True) -> SamplerProblem:
    S = int(rng.integers(2, 6))
    A = int(rng.integers(2, 4))
    if horizon:
        mdp = random_mdp(S, A, gamma=1.0, horizon=int(rng.integers(2, 6)), seed=rng, concentration=0.1)
    else:
        mdp = random_mdp(S, A, gamma=float(rng.uniform(0.75, 0.9)), seed=rng, concentration=0.1)
    z = 2.0 * rng.standard_normal((S, A))
    pi = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return SamplerProblem(mdp, pi, int(rng.integers(2**31)))


# ----------------------------------------------------------------------------- alias tables
def _joint(pr: SamplerProblem) -> np.ndarray:
    """Rows pi(a|s) P(s'|s, a) over the A*S outcomes (a, s'), and mu0 as a last row."""
    S, A = pr.pi.shape
    joint = (pr.pi[:, :, None] * np.asarray(pr.mdp.P)).reshape(S, A * S)
    return np.vstack([joint, np.concatenate([np.asarray(pr.mdp.mu0), np.zeros(A * S - S)])])


def _implied(threshold: np.ndarray, primary: np.ndarray, alias: np.ndarray, R: int, K: int) -> np.ndarray:
    r"""Distribution over outcome codes implied by tables: :math:`\frac1K(q_j \to \text{primary}_j) + \frac1K(1-q_j \to \text{alias}_j)`."""
    thr = threshold.reshape(R, K)
    prim = np.broadcast_to(primary.reshape(-1, K), (R, K))
    al = alias.reshape(R, K)
    out = np.zeros((R, K))
    rows = np.repeat(np.arange(R), K)
    np.add.at(out, (rows, prim.reshape(-1)), thr.reshape(-1) / K)
    np.add.at(out, (rows, al.reshape(-1)), (1.0 - thr.reshape(-1)) / K)
    return out


def _alias_computed(pr: SamplerProblem, threshold_scale: float = 1.0) -> np.ndarray:
    probs = _joint(pr)
    table = sampling.AliasTable.from_probs(probs)
    R, K = table.n_rows, table.n_columns
    return _implied(np.asarray(table.threshold) * threshold_scale, np.asarray(table.primary), np.asarray(table.alias), R, K)


identity(
    id="sampler.alias_tables_exact",
    statement=r"\frac1K\Big(q_k + \sum_{j:\,a_j = k}(1-q_j)\Big) = \pi(a|s)P(s'|s,a)\ \text{ for } k = (a, s'),\ \text{ and } = \mu_0(s')",
    source="Walker 1977; Vose 1991, 'A linear algorithm for generating random numbers with a given distribution', IEEE TSE 17(9), sec. III",
    reference="the probabilities the tables were built from (pi(a|s) P(s'|s,a) and mu0), against the distribution "
    "recomputed here from the tables' thresholds, primary codes and aliases",
    instance=_instance,
    computed=_alias_computed,
    expected=_joint,
    tolerance=1e-12,
    tolerance_reason="cumulative sums of K <= 15 terms in the construction: |error| <= K eps ~ 3e-15",
    mutants={"thresholds not scaled by K (q = p instead of K p)": lambda pr: _alias_computed(pr, 1.0 / _joint(pr).shape[1])},
)


# ----------------------------------------------------------------------------- rollout marginals
def _cells(tr: "sampling.Trajectories", T: int, S: int, A: int, shift: bool = False) -> np.ndarray:
    """Counts of (t, s_t, a_t) over the simulated steps with t < T, shape (T, S, A).

    Read from the batch's per-step view (one entry per simulated step); ``shift`` pairs
    :math:`s_{t+1}` with :math:`a_t` (an off-by-one in time).
    """
    sv = tr.steps
    keep = sv.time < T
    states = sv.next_state if shift else sv.state
    idx = (sv.time[keep] * S + states[keep]) * A + sv.action[keep]
    return np.bincount(idx, minlength=T * S * A).reshape(T, S, A)


def _rollout_counts(pr: SamplerProblem, mdp: FiniteMDP | None = None, pi: np.ndarray | None = None, shift: int = 0):
    mdp = pr.mdp if mdp is None else mdp
    pi = pr.pi if pi is None else pi
    tr = sampling.rollout(mdp, pi, N_EPISODES, seed=pr.seed)
    H, (S, A) = pr.mdp.horizon, pr.pi.shape
    return _cells(tr, H, S, A, shift=bool(shift)), N_EPISODES


def _rollout_expected(pr: SamplerProblem) -> np.ndarray:
    return ref.marginals(pr.mdp, pr.pi, pr.mdp.horizon)[:, :, None] * pr.pi[None]


statistical(
    id="sampler.rollout_marginals",
    statement=r"\Pr(s_t = s, a_t = a) = p_t(s)\,\pi(a|s),\quad p_{t+1} = p_t P_\pi,\ p_0 = \mu_0 \quad (t < H)",
    source="definition of the Markov chain of an MDP under a stationary policy (Puterman 1994, sec. 2.1.6)",
    reference=f"forward propagation of mu0 through P_pi written from the model's data; frequencies of "
    f"{N_EPISODES} episodes of pgexact.rollout, every (t, s, a) cell",
    instance=_instance,
    observed=_rollout_counts,
    expected=_rollout_expected,
    power_note=f"power: with n = {N_EPISODES} a single cell whose probability is off by 0.1 around 0.5 has "
    "n KL = 1007, about 50 times the critical value log(2m/alpha) ~ 20 for m ~ 100 cells",
    mutants={
        "off by one in time (s_{t+1} paired with a_t)": lambda pr: _rollout_counts(pr, shift=1),
        "actions drawn from the uniform policy": lambda pr: _rollout_counts(pr, pi=np.full_like(pr.pi, 1.0 / pr.pi.shape[1])),
    },
)


# ----------------------------------------------------------------------------- geometric stopping
def _geometric_counts(pr: SamplerProblem, mdp: FiniteMDP | None = None):
    r"""Cells: :math:`\#\{L > t\}` for t < T_CUT, :math:`\#\{s_t = s, a_t = a, L > t\}`, and the reported discount.

    The per-step discount an estimator applies must be 1 under geometric stopping (the stop *is*
    the discount); it enters as one cell of probability 1 (a wrong value has probability 0).
    """
    mdp = pr.mdp if mdp is None else mdp
    tr = sampling.rollout(mdp, pr.pi, N_GEOMETRIC, geometric=True, seed=pr.seed)
    S, A = pr.pi.shape
    survive = np.zeros(T_CUT, dtype=np.int64)  # #{L > t} = episodes simulated at step t
    T = min(T_CUT, tr.n_steps)
    survive[:T] = tr.counts[:T]
    joint = _cells(tr, T_CUT, S, A)
    counts = np.concatenate([survive, joint.reshape(-1), [1.0 if tr.discount == 1.0 else 0.0]])
    trials = np.concatenate([np.full(T_CUT + joint.size, N_GEOMETRIC), [1]])
    return counts, trials


def _geometric_expected(pr: SamplerProblem) -> np.ndarray:
    g = pr.mdp.gamma
    disc = g ** np.arange(T_CUT)
    p = ref.marginals(pr.mdp, pr.pi, T_CUT)
    joint = disc[:, None, None] * p[:, :, None] * pr.pi[None]
    return np.concatenate([disc, joint.reshape(-1), [1.0]])


statistical(
    id="sampler.geometric_stopping",
    statement=r"L \sim \mathrm{Geometric}(1-\gamma):\ \Pr(L > t) = \gamma^t,\quad \Pr(s_t = s, a_t = a, L > t) = \gamma^t p_t(s)\pi(a|s)"
    r"\ \Rightarrow\ E\Big[\sum_{t<L} r(s_t,a_t)\Big] = \sum_t \gamma^t E[r(s_t,a_t)] = J",
    source="Sutton & Barto 2018, sec. 10.4 and 13.2 (discounting as a probability of termination); Thomas 2014, 'Bias in natural actor-critic algorithms', sec. 3",
    reference=f"gamma^t and gamma^t p_t(s) pi(a|s) from forward propagation of the model's data; frequencies of "
    f"{N_GEOMETRIC} geometric episodes of pgexact.rollout for t < {T_CUT}, and the reported per-step discount (must be 1)",
    instance=lambda rng: _instance(rng, horizon=False),
    observed=_geometric_counts,
    expected=_geometric_expected,
    mutants={
        "stopping drawn with gamma instead of 1 - gamma": lambda pr: _geometric_counts(
            pr, mdp=FiniteMDP(pr.mdp.P, pr.mdp.r, pr.mdp.mu0, gamma=1.0 - pr.mdp.gamma)
        ),
    },
    power_note="the discount cell makes a wrong reported discount an event of probability 0 (statistic inf); "
    f"power: stopping with gamma instead of 1 - gamma (gamma in [0.75, 0.9]) moves Pr(L > 1) from gamma to "
    f"1 - gamma, n KL >= {N_GEOMETRIC} * 0.55, over 250 times the critical value",
)
