r"""Theorems about the sampler: alias tables, rollout marginals, geometric stopping.

The alias-table theorem is exact: the distribution a table encodes is recomputed from its
thresholds and aliases (column j yields its own outcome with probability :math:`q_j/K` and its
alias with probability :math:`(1-q_j)/K`) and compared with the probabilities it was built from.
The rollout theorems are statistical: frequencies of :func:`pgexact.rollout` against exact
probabilities from forward propagation of the model's data, with the Chernoff statistic of
:func:`~pgexact.theorems.registry.bernoulli_statistic` (false alarm at most 1e-6 per instance,
whatever the sample size; no normal approximation).

The transition-frequency theorems count every (t, s, a, s') cell of :func:`pgexact.rollout_chunks` and
:func:`pgexact.rollout` episodes, with the transition matrix dense or sparse, by the numpy kernel and by the
compiled kernel (forced on small chunks for the duration of the draw; it otherwise runs only above 2**20
transitions per chunk).

Instances: random dense MDPs with 2..5 states, 2..3 actions, Dirichlet(0.1) transition rows
(peaked, so that mistakes move probabilities far), softmax policies with logits N(0, 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


# ----------------------------------------------------------------------------- transition frequencies
N_TRANSITIONS = 20_000  # episodes per transition-frequency instance


@dataclass(frozen=True)
class TransitionProblem:
    P: np.ndarray  # (S, A, S), dense, with exact zeros (entries below 0.02 dropped)
    r: np.ndarray
    mu0: np.ndarray
    horizon: int
    pi: np.ndarray
    chunk: int
    seed: int


def _transition_instance(rng: np.random.Generator) -> TransitionProblem:
    """2..3 actions, A+1..A+2 states, horizon 2..4; Dirichlet(0.1) rows with the entries below 0.02 set to 0
    (so the sparse form stores only some of them, and some cells have probability 0)."""
    A = int(rng.integers(2, 4))
    S = A + int(rng.integers(1, 3))  # S != A: a mistaken flattening order moves every off-diagonal row
    H = int(rng.integers(2, 5))
    base = random_mdp(S, A, gamma=1.0, horizon=H, seed=rng, concentration=0.1)
    P = np.where(np.asarray(base.P) < 0.02, 0.0, np.asarray(base.P))
    P = P / P.sum(axis=2, keepdims=True)
    z = rng.standard_normal((S, A))  # logits N(0, 1): every action is visited often
    pi = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    chunk = int(rng.integers(3000, 9000))
    return TransitionProblem(P, np.asarray(base.r), np.asarray(base.mu0), H, pi, chunk, int(rng.integers(2**31)))


def _model(pr: TransitionProblem, P: np.ndarray | None, sparse: bool) -> FiniteMDP:
    """The instance's model, dense ``(S, A, S)`` or sparse ``(S*A, S)`` (row ``s*A + a``)."""
    import scipy.sparse

    P = pr.P if P is None else P
    S, A = pr.pi.shape
    data = scipy.sparse.csr_array(P.reshape(S * A, S)) if sparse else P
    return FiniteMDP(data, pr.r, pr.mu0, gamma=1.0, horizon=pr.horizon)


def _transition_cells(tr: "sampling.Trajectories", H: int, S: int, A: int) -> np.ndarray:
    """Counts of (t, s_t, a_t, s_{t+1}) over the simulated steps, shape (H, S, A, S)."""
    sv = tr.steps
    idx = ((sv.time * S + sv.state) * A + sv.action) * S + sv.next_state
    return np.bincount(idx, minlength=H * S * A * S).reshape(H, S, A, S)


def _transition_counts(pr: TransitionProblem, P: np.ndarray | None = None, roll: int = 0,
                       chunked: bool = True, sparse: bool = False):
    """Cell counts from :func:`pgexact.rollout_chunks` (summed over the chunks) or :func:`pgexact.rollout`;
    ``roll`` shifts the next state by one (an off-by-one in decoding the code a*S + s')."""
    mdp = _model(pr, P, sparse)
    H, (S, A) = pr.horizon, pr.pi.shape
    if chunked:
        counts = sum(
            _transition_cells(c, H, S, A)
            for c in sampling.rollout_chunks(mdp, pr.pi, N_TRANSITIONS, seed=pr.seed, chunk_size=pr.chunk)
        )
    else:
        counts = _transition_cells(sampling.rollout(mdp, pr.pi, N_TRANSITIONS, seed=pr.seed), H, S, A)
    return np.roll(counts, roll, axis=3), N_TRANSITIONS


def _both_counts(pr: TransitionProblem, P: np.ndarray | None = None, roll: int = 0):
    """Cells of the dense P and of the same P stored sparse, both through :func:`pgexact.rollout_chunks`."""
    dense, n = _transition_counts(pr, P, roll, sparse=False)
    sparse, _ = _transition_counts(pr, P, roll, sparse=True)
    return np.stack([dense, sparse]), n


def _transition_expected(pr: TransitionProblem) -> np.ndarray:
    """:math:`p_t(s)\\pi(a|s)P(s'|s,a)` with :math:`p_t` by forward propagation of the dense P."""
    P_pi = np.einsum("sa,sat->st", pr.pi, pr.P)
    p = np.empty((pr.horizon, pr.P.shape[0]))
    p[0] = pr.mu0
    for t in range(1, pr.horizon):
        p[t] = p[t - 1] @ P_pi
    return p[:, :, None, None] * pr.pi[None, :, :, None] * pr.P[None]


def _rows_misordered(P: np.ndarray) -> np.ndarray:
    """Row ``s*A + a`` filled with ``P(.|s, a)`` at position ``a*S + s`` (the flattening order mistaken)."""
    S, A, _ = P.shape
    return np.transpose(P, (1, 0, 2)).reshape(S, A, S)


def _states_swapped(P: np.ndarray) -> np.ndarray:
    """``P[s', a, s]`` renormalized over the last axis (uniform where a column of P is empty)."""
    Pt = np.transpose(P, (2, 1, 0))
    tot = Pt.sum(axis=2, keepdims=True)
    return np.where(tot > 0, Pt / np.where(tot > 0, tot, 1.0), 1.0 / P.shape[0])


_TRANSITION_POWER = (
    f"power: with n = {N_TRANSITIONS} a cell of probability 0.3 sampled at 0.2 has n KL = 480, about 20 times "
    "the critical value log(2m/alpha) ~ 21 (m <= 600 cells); a cell of probability 0 that is observed gives inf"
)

statistical(
    id="sampler.transition_frequencies",
    statement=r"\Pr(s_t = s, a_t = a, s_{t+1} = s') = p_t(s)\,\pi(a|s)\,P(s'|s, a),\quad p_{t+1} = p_t P_\pi,\ p_0 = \mu_0",
    source="definition of the Markov chain of an MDP under a stationary policy (Puterman 1994, sec. 2.1.6); "
    "Walker 1977 / Vose 1991 (one alias draw per transition over the joint outcome (a, s'))",
    reference=f"forward propagation of mu0 through the dense P written from the model's data; frequencies of "
    f"{N_TRANSITIONS} episodes each of pgexact.rollout_chunks (numpy kernel) on the dense P and on the same P "
    "stored as a sparse (S*A, S) matrix, every (t, s, a, s') cell of both",
    instance=_transition_instance,
    observed=_both_counts,
    expected=lambda pr: np.stack([_transition_expected(pr)] * 2),
    power_note=_TRANSITION_POWER,
    mutants={
        "(s, a) rows flattened as a*S + s instead of s*A + a": lambda pr: _both_counts(pr, P=_rows_misordered(pr.P)),
        "P[s', a, s] read for P[s, a, s'] (state axes swapped)": lambda pr: _both_counts(pr, P=_states_swapped(pr.P)),
        "next state decoded off by one (s' + 1 mod S)": lambda pr: _both_counts(pr, roll=1),
    },
    default_instances=5,
)


# ----------------------------------------------------------------------------- the compiled kernel
def _forced_compiled(fn: Any) -> Any:
    """``fn`` run with the compiled kernel (and the compiled table construction) on every chunk, whatever its size."""
    from ..sampling import kernel

    def run(*args: Any, **kwargs: Any) -> Any:
        saved = kernel.USE_COMPILED, kernel.COMPILED_MIN_TRANSITIONS
        kernel.USE_COMPILED, kernel.COMPILED_MIN_TRANSITIONS = True, 1
        try:
            return fn(*args, **kwargs)
        finally:
            kernel.USE_COMPILED, kernel.COMPILED_MIN_TRANSITIONS = saved

    return run


GEOMETRIC_GAMMA = 0.75  # discount of the geometric batch of the compiled theorem


def _geometric_transition_counts(pr: TransitionProblem, P: np.ndarray | None = None, roll: int = 0):
    """Cells (t, s, a, s') for t < H of geometric episodes (gamma = GEOMETRIC_GAMMA, dense P) in several chunks
    sampled into one ragged batch (:func:`pgexact.rollout`'s merged path)."""
    P = pr.P if P is None else P
    mdp = FiniteMDP(P, pr.r, pr.mu0, gamma=GEOMETRIC_GAMMA)
    tr = sampling.rollout(mdp, pr.pi, N_TRANSITIONS, geometric=True, seed=pr.seed, chunk_size=pr.chunk)
    H, (S, A) = pr.horizon, pr.pi.shape
    sv = tr.steps
    keep = sv.time < H
    idx = ((sv.time[keep] * S + sv.state[keep]) * A + sv.action[keep]) * S + sv.next_state[keep]
    counts = np.bincount(idx, minlength=H * S * A * S).reshape(H, S, A, S)
    return np.roll(counts, roll, axis=3), N_TRANSITIONS


def _compiled_counts(pr: TransitionProblem, P: np.ndarray | None = None, roll: int = 0):
    """Dense P through :func:`pgexact.rollout` (time-major rows), the same P sparse through
    :func:`pgexact.rollout_chunks` (ragged rows) and geometric episodes of the dense P in several chunks
    (rows of every chunk together), all by the compiled kernel; cells side by side."""
    dense, n = _transition_counts(pr, P, roll, chunked=False, sparse=False)
    sparse, _ = _transition_counts(pr, P, roll, chunked=True, sparse=True)
    geometric, _ = _geometric_transition_counts(pr, P, roll)
    return np.stack([dense, sparse, geometric]), n


def _compiled_expected(pr: TransitionProblem) -> np.ndarray:
    p = _transition_expected(pr)
    disc = GEOMETRIC_GAMMA ** np.arange(pr.horizon)  # Pr(L > t)
    return np.stack([p, p, disc[:, None, None, None] * p])


def _numba_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("numba") is not None


if _numba_installed():
    statistical(
        id="sampler.compiled_transition_frequencies",
        statement=r"\Pr(s_t = s, a_t = a, s_{t+1} = s') = p_t(s)\,\pi(a|s)\,P(s'|s, a),\quad"
        r"\Pr(s_t = s, a_t = a, s_{t+1} = s', L > t) = \gamma^t p_t(s)\,\pi(a|s)\,P(s'|s, a)\ \text{ (compiled kernel)}",
        source="as sampler.transition_frequencies; the compiled kernel (pgexact.sampling._compiled) draws the same "
        "uniforms through the same tables as the numpy kernel",
        reference=f"forward propagation of mu0 through the dense P (times gamma^t = Pr(L > t) for the geometric "
        f"batch); frequencies of {N_TRANSITIONS} episodes each of pgexact.rollout on the dense P, of "
        "pgexact.rollout_chunks on the same P stored sparse, and of geometric pgexact.rollout in several chunks "
        f"(gamma = {GEOMETRIC_GAMMA}), all with the compiled kernel forced (it otherwise runs only above 2**20 "
        "transitions per chunk)",
        instance=_transition_instance,
        observed=_forced_compiled(_compiled_counts),
        expected=_compiled_expected,
        power_note=_TRANSITION_POWER + "; one default instance: importing numba and loading the cached "
        "compiled kernels costs about 0.4 s of CPU once per process",
        mutants={
            "(s, a) rows flattened as a*S + s instead of s*A + a": _forced_compiled(
                lambda pr: _compiled_counts(pr, P=_rows_misordered(pr.P))),
            "next state decoded off by one (s' + 1 mod S)": _forced_compiled(lambda pr: _compiled_counts(pr, roll=1)),
        },
        default_instances=1,
    )
