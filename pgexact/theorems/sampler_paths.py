r"""Theorems about the sampler's deterministic contracts: one function of the uniforms whatever the code path,
one episode set whatever the chunking, and the storage of a batch read back as it was written.

* **Kernel paths.** The rollout kernel has three implementations of one function of the uniforms: the
  numpy loop over time, the scan tail (the rest of each episode by a prefix composition of the step
  maps, used when few episodes remain) and the compiled numba kernel. A seed must give the same episodes
  bit for bit through each of them. The reference is the numpy loop with the tail switched off.
* **Chunk seeding.** Chunk i of a rollout draws from child i of the seed's ``SeedSequence``, so the
  one-shot :func:`pgexact.rollout`, :func:`pgexact.rollout_chunks` and :func:`pgexact.distributed.map_chunks`
  give the episodes of the chunks replayed one by one from ``numpy.random.SeedSequence(seed).spawn(k)``.
* **Storage.** :class:`pgexact.Trajectories` built from episodes laid out as its documentation says
  (rows of running episodes, columns by decreasing length, N initial states first) must read back the
  same per-step arrays, padded views, final states, per-episode sums and discounted reverse sums as plain
  Python loops over the episodes.

All three are identities with residual 0 by design (integers, or the same floating-point operations); the
reverse sums are compared at a rounding tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import sampling
from ..models.finite_mdp import FiniteMDP
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []

SOURCE_KERNEL = (
    "Walker 1977; Vose 1991, 'A linear algorithm for generating random numbers with a given distribution', "
    "IEEE TSE 17(9) (one alias draw per transition); Hillis & Steele 1986, 'Data parallel algorithms', CACM "
    "29(12) and Blelloch 1990, 'Prefix sums and their applications' (the scan tail composes the same step "
    "maps); numpy's SeedSequence.spawn for each chunk's seed sequence"
)


def _with_terminal(P: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last state made terminal (absorbing with reward 0 under every action)."""
    P, r = P.copy(), r.copy()
    S = P.shape[0]
    P[S - 1] = 0.0
    P[S - 1, :, S - 1] = 1.0
    r[S - 1] = 0.0
    return P, r


def _random_model(rng: np.random.Generator, S: int, A: int, *, gamma: float, horizon: int | None,
                  terminal: bool) -> tuple[FiniteMDP, np.ndarray]:
    P = rng.dirichlet(np.full(S, 0.3), size=(S, A))
    r = rng.standard_normal((S, A))
    if terminal:
        P, r = _with_terminal(P, r)
    mu0 = rng.dirichlet(np.ones(S))
    z = rng.standard_normal((S, A))
    pi = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return FiniteMDP(P, r, mu0, gamma=gamma, horizon=horizon), pi


# ----------------------------------------------------------------------------- kernel paths
@dataclass(frozen=True)
class KernelProblem:
    finite: FiniteMDP  # horizon >= 64: the scan tail runs from the first row
    geometric: FiniteMDP  # gamma ~ 0.97: the tail runs on the last long episodes
    pi: np.ndarray
    n_finite: int
    n_geometric: int
    seed: int


def _kernel_instance(rng: np.random.Generator) -> KernelProblem:
    """S in 2..6 (powers of two and not, for both decodings), A in 2..3, a terminal state; a finite horizon
    of 64..80 steps with at most 256 / S episodes (the scan tail from the first row) and a geometric batch
    of 300 episodes at gamma in [0.96, 0.98] (its longest episodes end in the tail)."""
    S, A = int(rng.integers(2, 7)), int(rng.integers(2, 4))
    H = int(rng.integers(64, 81))
    finite, pi = _random_model(rng, S, A, gamma=1.0, horizon=H, terminal=bool(rng.integers(2)))
    geometric = FiniteMDP(finite.P, finite.r, finite.mu0, gamma=float(rng.uniform(0.96, 0.98)))
    n_finite = int(rng.integers(4, 256 // S + 1))
    return KernelProblem(finite, geometric, pi, n_finite, 300, int(rng.integers(2**31)))


def _episodes(tr: "sampling.Trajectories") -> tuple[np.ndarray, ...]:
    """Padded states, actions, rewards and the stops, as float arrays."""
    return (tr.states.astype(float), tr.actions.astype(float), np.asarray(tr.rewards, dtype=float),
            tr.stops.astype(float))


def _rollouts(pr: KernelProblem) -> tuple[np.ndarray, ...]:
    """The finite batch (time-major buffers) and the geometric batch (ragged), both through pgexact.rollout."""
    finite = sampling.rollout(pr.finite, pr.pi, pr.n_finite, seed=pr.seed)
    geometric = sampling.rollout(pr.geometric, pr.pi, pr.n_geometric, geometric=True, seed=pr.seed)
    return _episodes(finite) + _episodes(geometric)


def _kernel_settings(**settings: Any) -> Any:
    """A context setting attributes of :mod:`pgexact.sampling.kernel` for the duration of a draw."""
    from contextlib import contextmanager

    from ..sampling import kernel

    @contextmanager
    def context():
        saved = {k: getattr(kernel, k) for k in settings}
        for k, v in settings.items():
            setattr(kernel, k, v)
        try:
            yield
        finally:
            for k, v in saved.items():
                setattr(kernel, k, v)

    return context()


def _numpy_loop(pr: KernelProblem) -> tuple[np.ndarray, ...]:
    """The reference: the numpy loop over time, scan tail and compiled kernel switched off."""
    with _kernel_settings(TAIL_WORK=-1, USE_COMPILED=False):
        return _rollouts(pr)


def _numba_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def _kernel_paths(pr: KernelProblem) -> tuple[np.ndarray, ...]:
    """The numpy kernel with its scan tail, and (when numba is installed) the compiled kernel forced on
    every chunk (with the compiled table construction)."""
    with _kernel_settings(USE_COMPILED=False):
        numpy_tail = _rollouts(pr)
    if not _numba_installed():
        return numpy_tail + numpy_tail
    with _kernel_settings(USE_COMPILED=True, COMPILED_MIN_TRANSITIONS=1):
        return numpy_tail + _rollouts(pr)


def _reference_twice(pr: KernelProblem) -> tuple[np.ndarray, ...]:
    ref = _numpy_loop(pr)
    return ref + ref


def _rewards_of_next_state(pr: KernelProblem) -> tuple[np.ndarray, ...]:
    """The mistake of reading the reward at the next state: r(s_{t+1}, a_t) (finite batch)."""
    out = list(_kernel_paths(pr))
    states, actions = out[0].astype(int), out[1].astype(int)
    out[2] = np.asarray(pr.finite.r)[states[:, 1:], actions]
    return tuple(out)


def _next_state_in_row_t(pr: KernelProblem) -> tuple[np.ndarray, ...]:
    """The mistake of writing s_{t+1} into row t (finite batch: every state one step early)."""
    out = list(_kernel_paths(pr))
    s = out[0].copy()
    s[:, :-1] = s[:, 1:]
    out[0] = s
    return tuple(out)


identity(
    id="sampler.kernel_paths_agree",
    statement=r"\text{numpy loop} \equiv \text{numpy loop with scan tail} \equiv \text{compiled kernel}:\ "
    r"(s_t, a_t, r_t, L)\ \text{bit for bit from the same seed}",
    source=SOURCE_KERNEL,
    reference="the numpy kernel's loop over time with the scan tail and the compiled kernel switched off; "
    "computed: the numpy kernel with its scan tail (a finite horizon of 64..80 steps with at most 256/S "
    "episodes, which runs the tail from the first row, and geometric episodes at gamma ~ 0.97, whose long "
    "episodes end in it) and the compiled kernel forced on every chunk, with its own table construction",
    instance=_kernel_instance,
    computed=_kernel_paths,
    expected=_reference_twice,
    tolerance=1e-15,
    tolerance_reason="bit-identical by construction (the same uniforms through the same tables and "
    "comparisons); any positive tolerance separates it from a mistake, whose smallest residual is a state "
    "index off by one (>= 1/S) or a reward of another cell (differences of N(0, 1) draws)",
    mutants={
        "reward read at the next state, r(s_{t+1}, a_t)": _rewards_of_next_state,
        "s_{t+1} written into row t": _next_state_in_row_t,
    },
    default_instances=2,
)


# ----------------------------------------------------------------------------- chunk seeding
@dataclass(frozen=True)
class SeedingProblem:
    finite: FiniteMDP
    discounted: FiniteMDP
    pi: np.ndarray
    n: int
    chunk: int
    seed: int


def _seeding_instance(rng: np.random.Generator) -> SeedingProblem:
    S, A = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    finite, pi = _random_model(rng, S, A, gamma=1.0, horizon=int(rng.integers(3, 7)), terminal=True)
    discounted = FiniteMDP(finite.P, finite.r, finite.mu0, gamma=float(rng.uniform(0.6, 0.85)))
    chunk = int(rng.integers(7, 40))
    n = chunk * int(rng.integers(2, 5)) + int(rng.integers(1, chunk))  # a shorter last chunk
    return SeedingProblem(finite, discounted, pi, n, chunk, int(rng.integers(2**31)))


def _flags_from_states(tr: "sampling.Trajectories", terminal: np.ndarray, objective: str) -> tuple[np.ndarray, ...]:
    """Lengths (first t with s_t terminal, else the stop), absorbed (a terminal state among s_0..s_stop) and
    truncated (a truncated objective's episode that was not absorbed), episode by episode."""
    states = tr.states
    N = states.shape[0]
    lengths, absorbed = np.empty(N), np.zeros(N)
    for n in range(N):
        stop = int(tr.stops[n])
        hits = [t for t in range(stop + 1) if terminal[states[n, t]]]
        lengths[n] = min(hits[0], stop) if hits else stop
        absorbed[n] = 1.0 if hits else 0.0
    truncated = (1.0 - absorbed) if objective == "truncated" else np.zeros(N)
    return lengths, absorbed, truncated


def _padded(parts: list, T: int | None = None) -> tuple[np.ndarray, ...]:
    """States, actions, rewards, stops of batches stacked along episodes (rows padded to the longest)."""
    T = max(p.n_steps for p in parts) if T is None else T
    out = []
    for name, extra in (("states", 1), ("actions", 0), ("rewards", 0)):
        rows = []
        for p in parts:
            x = np.asarray(getattr(p, name), dtype=float)
            pad = np.zeros((x.shape[0], T + extra))
            pad[:, : x.shape[1]] = x
            if name == "states":  # after the stop the padded view holds the final state
                pad[:, x.shape[1]:] = x[:, -1:]
            rows.append(pad)
        out.append(np.concatenate(rows))
    out.append(np.concatenate([p.stops for p in parts]).astype(float))
    return tuple(out)


def _seeding_computed(pr: SeedingProblem) -> tuple:
    from ..distributed import map_chunks

    one_shot = sampling.rollout(pr.finite, pr.pi, pr.n, seed=pr.seed, chunk_size=pr.chunk)
    chunks = list(sampling.rollout_chunks(pr.finite, pr.pi, pr.n, seed=pr.seed, chunk_size=pr.chunk))
    mapped = list(map_chunks(None, pr.finite, pr.pi, pr.n, seed=pr.seed, chunk_size=pr.chunk))
    geometric = sampling.rollout(pr.discounted, pr.pi, pr.n, geometric=True, seed=pr.seed, chunk_size=pr.chunk)
    truncated = sampling.rollout(pr.discounted, pr.pi, pr.n, horizon=pr.finite.horizon, seed=pr.seed,
                                 chunk_size=pr.chunk)
    flags = tuple(np.concatenate([x.astype(float) for x in (b.lengths, b.absorbed, b.truncated)])
                  for b in (one_shot, geometric, truncated))
    return (_padded([one_shot]) + _padded(chunks) + _padded(mapped) + _padded([geometric])
            + _padded([truncated]) + flags)


def _replayed(pr: SeedingProblem, child: Any = None) -> tuple:
    """The chunks replayed one by one from ``SeedSequence(seed).spawn(k)`` (``child(i, children)`` picks
    the seed of chunk i; a mistake in seeding is a different pick)."""
    from ..distributed import replay_chunk

    sizes = [pr.chunk] * (pr.n // pr.chunk) + ([pr.n % pr.chunk] if pr.n % pr.chunk else [])
    children = np.random.SeedSequence(pr.seed).spawn(len(sizes))
    pick = (lambda i, c: c[i]) if child is None else child
    finite = [replay_chunk(pr.finite, pr.pi, pick(i, children), size) for i, size in enumerate(sizes)]
    geometric = [replay_chunk(pr.discounted, pr.pi, pick(i, children), size, geometric=True)
                 for i, size in enumerate(sizes)]
    truncated = [replay_chunk(pr.discounted, pr.pi, pick(i, children), size, horizon=pr.finite.horizon)
                 for i, size in enumerate(sizes)]
    terminal = np.asarray(pr.finite.terminal)
    flags = []
    for parts, objective in ((finite, "finite"), (geometric, "geometric"), (truncated, "truncated")):
        per = [_flags_from_states(p, terminal, objective) for p in parts]
        flags.append(np.concatenate([np.concatenate([f[i] for f in per]) for i in range(3)]))
    f = _padded(finite)
    return f + f + f + _padded(geometric) + _padded(truncated) + tuple(flags)


identity(
    id="sampler.chunk_seeding",
    statement=r"\text{chunk } i \text{ of a rollout} = \text{the chunk sampled alone from } "
    r"\mathrm{SeedSequence}(\text{seed}).\mathrm{spawn}(k)[i],\ \text{whatever the path}",
    source=SOURCE_KERNEL + "; DESIGN: results bit-identical whatever the chunk size's split across workers",
    reference="each chunk sampled alone (pgexact.distributed.replay_chunk) from the children of "
    "numpy.random.SeedSequence(seed).spawn(k), stacked in order; lengths, absorption and truncation flags "
    "recomputed episode by episode from the sampled states (the first terminal state)",
    instance=_seeding_instance,
    computed=_seeding_computed,
    expected=_replayed,
    tolerance=1e-15,
    tolerance_reason="bit-identical by construction (the same chunk computation from the same seed); any "
    "positive tolerance separates it from a mistake, whose smallest residual is a state index off by one "
    "(>= 1/S) or a flag (1)",
    mutants={
        "every chunk drawn from child 0": lambda pr: _replayed(pr, child=lambda i, c: c[0]),
        "chunk i drawn from child i + 1": lambda pr: _replayed(
            pr, child=lambda i, c: np.random.SeedSequence(pr.seed).spawn(len(c) + 1)[i + 1]),
    },
    default_instances=3,
)


# ----------------------------------------------------------------------------- storage
@dataclass(frozen=True)
class StorageProblem:
    states: list  # states[n]: s_0 .. s_{stop_n}
    actions: list
    rewards: list
    stops: np.ndarray
    lengths: np.ndarray
    x: list  # per-step values x[n][t]
    factor: float
    n_states: int
    n_actions: int


def _storage_instance(rng: np.random.Generator, full: bool = False) -> StorageProblem:
    """12 episodes of random states, actions and rewards; stops in 1..200 with the longest >= 130 (the reverse
    sums span several blocks of 64 steps), or all 100 (``full``); lengths at most the stops."""
    S, A, N = int(rng.integers(2, 6)), int(rng.integers(2, 4)), 12
    stops = np.full(N, 100) if full else rng.integers(1, 201, N)
    if not full:
        stops[rng.integers(N)] = rng.integers(130, 201)
    lengths = np.minimum(stops, rng.integers(0, 201, N))
    lengths = np.where(rng.random(N) < 0.5, stops, lengths)
    states = [rng.integers(0, S, int(L) + 1) for L in stops]
    actions = [rng.integers(0, A, int(L)) for L in stops]
    rewards = [rng.standard_normal(int(L)) for L in stops]
    x = [rng.standard_normal(int(L)) for L in stops]
    return StorageProblem(states, actions, rewards, stops.astype(np.int64), lengths.astype(np.int64), x,
                          float(rng.uniform(0.9, 0.999)), S, A)


def _layout(pr: StorageProblem) -> tuple[Any, list]:
    """The batch as the documentation lays it out, and the storage order of its steps as (n, t) pairs."""
    N = len(pr.stops)
    order = np.argsort(-pr.stops, kind="stable")  # column k holds episode order[k]
    T = int(pr.stops.max())
    counts = np.array([int(np.sum(pr.stops > t)) for t in range(T)], dtype=np.int64)
    steps = [(int(order[k]), t) for t in range(T) for k in range(int(counts[t]))]
    flat_states = [int(pr.states[order[k]][0]) for k in range(N)] + [int(pr.states[n][t + 1]) for n, t in steps]
    tr = sampling.Trajectories(
        flat_states=np.array(flat_states, dtype=np.int32),
        flat_actions=np.array([pr.actions[n][t] for n, t in steps], dtype=np.int32),
        flat_rewards=np.array([pr.rewards[n][t] for n, t in steps]),
        counts=counts, column_order=order, lengths=pr.lengths, stops=pr.stops,
        absorbed=pr.lengths < pr.stops, truncated=np.zeros(N, dtype=bool),
        gamma=pr.factor, discount=pr.factor, objective="truncated" if len(set(pr.stops.tolist())) == 1 else "geometric",
        n_states=pr.n_states, n_actions=pr.n_actions,
    )
    return tr, steps


def _storage_computed(pr: StorageProblem) -> tuple:
    tr, steps = _layout(pr)
    sv = tr.steps
    x = np.array([pr.x[n][t] for n, t in steps])
    return (sv.episode.astype(float), sv.time.astype(float), sv.state.astype(float), sv.action.astype(float),
            sv.reward, sv.next_state.astype(float), sv.real.astype(float), sv.last.astype(float),
            tr.final_states.astype(float), tr.states.astype(float), np.asarray(tr.rewards, dtype=float),
            tr.per_episode_sum(x), tr.per_episode_sum(np.stack([x, -2.0 * x], axis=1)), tr.reverse_scan(x, pr.factor))


def _reverse_sum(x: np.ndarray, c: float) -> np.ndarray:
    y, acc = np.empty(len(x)), 0.0
    for t in range(len(x) - 1, -1, -1):
        acc = x[t] + c * acc
        y[t] = acc
    return y


def _storage_expected(pr: StorageProblem, forward: bool = False, last_at_stop: bool = False) -> tuple:
    _, steps = _layout(pr)
    N, T = len(pr.stops), int(pr.stops.max())
    f = lambda v: np.array(v, dtype=float)  # noqa: E731
    padded_states = np.zeros((N, T + 1))
    padded_rewards = np.zeros((N, T))
    for n in range(N):
        L = int(pr.stops[n])
        padded_states[n, : L + 1] = pr.states[n]
        padded_states[n, L + 1:] = pr.states[n][L]
        padded_rewards[n, :L] = pr.rewards[n]
    sums = f([np.sum(pr.x[n]) for n in range(N)])
    scans = {n: (_reverse_sum(pr.x[n][::-1], pr.factor)[::-1] if forward else _reverse_sum(pr.x[n], pr.factor))
             for n in range(N)}
    last = (lambda n, t: t == pr.stops[n]) if last_at_stop else (lambda n, t: t == pr.stops[n] - 1)
    return (f([n for n, _ in steps]), f([t for _, t in steps]), f([pr.states[n][t] for n, t in steps]),
            f([pr.actions[n][t] for n, t in steps]), f([pr.rewards[n][t] for n, t in steps]),
            f([pr.states[n][t + 1] for n, t in steps]), f([t < pr.lengths[n] for n, t in steps]),
            f([last(n, t) for n, t in steps]), f([pr.states[n][-1] for n in range(N)]), padded_states,
            padded_rewards, sums, np.stack([sums, -2.0 * sums], axis=1), f([scans[n][t] for n, t in steps]))


def _storage_both(pr: tuple, side: Any) -> tuple:
    return side(pr[0]) + side(pr[1])


identity(
    id="sampler.trajectory_storage",
    statement=r"\text{Trajectories read back their episodes: per-step } (n, t, s_t, a_t, r_t, s_{t+1}, t < \ell_n, "
    r"t = L_n - 1),\ \text{padded views},\ \textstyle\sum_t x_t,\ y_t = x_t + c\, y_{t+1}",
    source="the storage layout of pgexact.Trajectories (rows of running episodes, columns by decreasing length, "
    "the N initial states first); Blelloch 1990, 'Prefix sums and their applications', sec. 1.4 (the blocked "
    "linear recurrence of the reverse sums)",
    reference="plain Python loops over the episodes as lists: the per-step arrays in storage order, the padded "
    "views, the per-episode sums and the reverse recursion y_t = x_t + c y_{t+1} step by step",
    instance=lambda rng: (_storage_instance(rng), _storage_instance(rng, full=True)),
    computed=lambda pr: _storage_both(pr, _storage_computed),
    expected=lambda pr: _storage_both(pr, _storage_expected),
    tolerance=1e-12,
    tolerance_reason="integers and copies are exact; the reverse sums add at most 200 terms of weight <= 1 in "
    "blocks of 64 (the blocked scan) against a sequential loop: |error| <= 200 eps max|y| ~ 4e-14 relative "
    "to the largest |y| (about 10 here)",
    mutants={
        "reverse sums run forward in time (y_t = x_t + c y_{t-1})": lambda pr: _storage_both(
            pr, lambda p: _storage_computed(p)[:-1] + _storage_expected(p, forward=True)[-1:]),
        "an episode's last step at t = stop instead of stop - 1": lambda pr: _storage_both(
            pr, lambda p: _storage_computed(p)[:7] + _storage_expected(p, last_at_stop=True)[7:8]
            + _storage_computed(p)[8:]),
    },
    default_instances=3,
)
