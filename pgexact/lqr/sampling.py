r"""Batched, chunked LQR rollouts of linear-Gaussian policies.

**Reproducible sampling.** Episodes are drawn in *seed blocks* of :data:`SEED_BLOCK` episodes:
block ``i`` (episodes ``i·SEED_BLOCK`` to ``(i+1)·SEED_BLOCK − 1``) draws from child ``i`` of the
seed's :class:`~numpy.random.SeedSequence` (:func:`pgexact._chunks.chunk_seed`), first the
initial states of the whole block, then the noise of each episode in turn (episode-major), so an
episode's random numbers do not depend on how many others are drawn. Every matrix product runs
on whole blocks (padded with zeros), so its rounding does not depend on how many blocks are
simulated together (small inner dimensions use explicit elementwise sums, which round every
row alike). Hence the episodes are bit-identical whatever ``chunk_size`` (how many
episodes are simulated at once) and whatever ``executor`` and number of workers computes the
chunks. All episodes of a chunk advance together by matrix products (a Python loop over time only).
"""

from __future__ import annotations

import numbers
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._chunks import ChunkError, chunk_seed, chunk_sizes
from .._random import Seed, as_seed_sequence
from .._validation import ReadOnlyOnCopy, as_float_array, check_positive_int, format_index
from ..errors import NumericalError
from .model import LQR
from .policy import LinearGaussian, _psd_sqrt

__all__ = [
    "LQRTrajectories",
    "rollout",
    "SEED_BLOCK",
    "DEFAULT_CHUNK_SIZE",
    "MAX_BYTES",
    "MAX_TIME_STEPS",
]

#: Episodes per child seed (the unit of reproducibility; see the module docstring).
SEED_BLOCK = 64
#: Episodes simulated together unless told otherwise.
DEFAULT_CHUNK_SIZE = 1 << 13
#: Largest accepted size of the returned arrays (states, actions, costs), in bytes.
MAX_BYTES = 4 * 2**30
#: Largest accepted number of time steps summed over chunks (the Python loop's length); each
#: costs about 20-60 µs whatever the chunk's size, so a call stays within a few seconds (a horizon of
#: 10^5 suits gamma = 0.9999; more episodes fit in larger chunks).
MAX_TIME_STEPS = 100_000
_SECONDS_PER_STEP = 3e-5


@dataclass(frozen=True, eq=False)
class LQRTrajectories(ReadOnlyOnCopy):
    r"""A batch of LQR episodes (arrays read-only, batch-first).

    Attributes
    ----------
    states : numpy.ndarray, shape (N, T, n)
        :math:`x_t`, t = 0..T-1 (batch-first views of time-major memory, as :class:`pgexact.Trajectories`).
    actions : numpy.ndarray, shape (N, T, m)
    costs : numpy.ndarray, shape (N, T)
        :math:`c_t = x_t^\top Q x_t + u_t^\top R u_t + 2x_t^\top N u_t` (undiscounted).
    final_states : numpy.ndarray, shape (N, n)
        :math:`x_T`.
    gamma : float
    """

    states: np.ndarray
    actions: np.ndarray
    costs: np.ndarray
    final_states: np.ndarray
    gamma: float

    def __post_init__(self) -> None:
        """Check the shapes agree, the entries are finite reals and ``0 <= gamma <= 1``.

        The fields become read-only views (the caller's arrays are not modified; float64 input
        is not copied).
        """
        arrays = {}
        for name, ndim, what in (("states", 3, "(N, T, n)"), ("actions", 3, "(N, T, m)"),
                                 ("costs", 2, "(N, T)"), ("final_states", 2, "(N, n)")):
            value = getattr(self, name)
            arr = value if isinstance(value, np.ndarray) and value.dtype == np.float64 else _real_array(name, value)
            if arr.ndim != ndim:
                raise ValueError(f"{name} must have shape {what}, got shape {arr.shape}")
            arrays[name] = arr
        N, T, n = arrays["states"].shape
        expected = {"actions": (N, T, None), "costs": (N, T), "final_states": (N, n)}
        for name, want in expected.items():
            got = arrays[name].shape
            if any(w is not None and g != w for g, w in zip(got, want)):
                shown = "(" + ", ".join("m" if w is None else str(w) for w in want) + ")"
                raise ValueError(f"{name} must have shape {shown} to match states {arrays['states'].shape}, got {got}")
        if N == 0 or T == 0:
            raise ValueError(f"states must hold at least one episode of at least one step, got shape {(N, T, n)}")
        for name, arr in arrays.items():
            _check_finite(name, arr)
        if not isinstance(self.gamma, numbers.Real) or isinstance(self.gamma, (bool, np.bool_)):
            raise TypeError(f"gamma must be a real number, got {type(self.gamma).__name__}")
        gamma = float(self.gamma)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma is {gamma}, expected 0 <= gamma <= 1")
        for name, arr in arrays.items():
            view = arr.view()
            view.flags.writeable = False
            object.__setattr__(self, name, view)
        object.__setattr__(self, "gamma", gamma)

    @property
    def rewards(self) -> np.ndarray:
        """:math:`r_t = -c_t`, shape (N, T)."""
        return -self.costs

    @property
    def n_episodes(self) -> int:
        """Number of episodes N."""
        return int(self.costs.shape[0])

    @property
    def n_steps(self) -> int:
        """Episode length T."""
        return int(self.costs.shape[1])

    @property
    def n_states(self) -> int:
        """State dimension n."""
        return int(self.states.shape[2])

    @property
    def n_actions(self) -> int:
        """Input dimension m."""
        return int(self.actions.shape[2])

    @np.errstate(under="ignore")
    def discounted_returns(self) -> np.ndarray:
        r""":math:`\sum_t \gamma^t r_t` per episode, shape (N,)."""
        return self.rewards @ (self.gamma ** np.arange(self.n_steps))


def _real_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array (no finiteness check: :func:`_check_finite` does it)."""
    return as_float_array(name, value, allow_nonfinite=True)


#: Entries of an array checked for finiteness at a time (bounds the temporary mask's memory).
_FINITE_BLOCK = 1 << 22


def _check_finite(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` naming the first non-finite entry of ``arr`` (read in blocks of rows)."""
    rows = max(1, _FINITE_BLOCK // max(1, arr[0].size if arr.shape[0] else 1))
    for lo in range(0, arr.shape[0], rows):
        bad = ~np.isfinite(arr[lo:lo + rows])
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            idx = (idx[0] + lo,) + idx[1:]
            raise ValueError(f"{name}{format_index(idx)} is {arr[idx]}, expected a finite number")


# ---------------------------------------------------------------------------- the kernel
@dataclass(frozen=True)
class _Dynamics:
    """Everything a chunk needs (picklable, for process executors).

    ``Mx = [-K^T | Q | A^T | 2N]`` (n, m + n + n + m) and ``Mu = [R | B^T]`` (m, m + n): the
    products with the state and with the action, each in one pass.
    """

    Mx: np.ndarray
    Mu: np.ndarray
    LuT: np.ndarray | None  # action-noise factor^T (None: deterministic policy)
    CT: np.ndarray | None  # process-noise factor^T (None: no noise)
    L0T: np.ndarray
    n: int
    m: int
    T: int
    cross: bool

    @property
    def d(self) -> int:
        return (0 if self.LuT is None else self.LuT.shape[0]) + (0 if self.CT is None else self.CT.shape[0])


def _draw_block(dyn: _Dynamics, ss: np.random.SeedSequence, block: int, lo: int, hi: int) -> tuple:
    """Initial-state normals of the whole block (B, n) and the noise of its episodes lo..hi-1 (hi-lo, T, d)."""
    gen = np.random.Generator(np.random.PCG64(chunk_seed(ss, block)))
    z0 = gen.standard_normal((SEED_BLOCK, dyn.n))
    z = gen.standard_normal((hi, dyn.T, dyn.d))[lo:] if dyn.d else np.zeros((hi - lo, dyn.T, 0))
    return z0, z


#: The kernel checks the state for overflow every this many steps (and stops there).
_OVERFLOW_CHECK_EVERY = 64

#: Up to this inner dimension, products run as explicit elementwise sums (exactly the same
#: rounding for every row, whatever the number of rows); beyond it, as BLAS products on whole
#: seed blocks (the same shapes every time).
_ELEMENTWISE_UP_TO = 12


def _times(x: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``x @ M`` for x (nb, B, k), with a rounding that does not depend on nb."""
    k = M.shape[0]
    if k > _ELEMENTWISE_UP_TO:
        return x @ M  # batched over the leading axis: one (B, k) @ (k, j) product per seed block
    out = x[..., 0, None] * M[0]
    for i in range(1, k):
        out += x[..., i, None] * M[i]
    return out


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products over the last axis, rounded alike for every row."""
    k = a.shape[-1]
    if k > _ELEMENTWISE_UP_TO:
        return np.sum(a * b, axis=-1)
    out = a[..., 0] * b[..., 0]
    for i in range(1, k):
        out += a[..., i] * b[..., i]
    return out


def _run_chunk(dyn: _Dynamics, ss: np.random.SeedSequence, start: int, stop: int, out: tuple | None = None) -> tuple:
    """Episodes start..stop-1 into time-major buffers (T, size, n), (T, size, m), (T, size), (size, n)."""
    B, T, n, m = SEED_BLOCK, dyn.T, dyn.n, dyn.m
    first, last = start // B, (stop - 1) // B
    nb = last - first + 1
    z0 = np.zeros((nb, B, n))
    Z = np.zeros((T, nb, B, dyn.d))
    for k, b in enumerate(range(first, last + 1)):
        lo, hi = max(start - b * B, 0), min(stop - b * B, B)
        z0[k], zk = _draw_block(dyn, ss, b, lo, hi)
        Z[:, k, lo:hi] = zk.transpose(1, 0, 2)
    rows = slice(start - first * B, stop - first * B)  # the chunk's episodes in the padded layout
    size = stop - start
    if out is None:
        out = (np.empty((T, size, n)), np.empty((T, size, m)), np.empty((T, size)), np.empty((size, n)))
    states, actions, costs, final = out
    mu = 0 if dyn.LuT is None else dyn.LuT.shape[0]
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        x = _times(z0, dyn.L0T)  # (nb, B, n)
        for t in range(T):
            zt = Z[t]
            XM = _times(x, dyn.Mx)  # [-Kx | Qx | Ax | 2Nx] per row
            u = XM[..., :m]
            if dyn.LuT is not None:
                u = u + _times(zt[..., :mu], dyn.LuT)
            UM = _times(u, dyn.Mu)  # [Ru | Bu]
            c = _rowdot(XM[..., m:m + n], x) + _rowdot(UM[..., :m], u)
            if dyn.cross:
                c += _rowdot(XM[..., m + 2 * n:], u)
            states[t] = x.reshape(-1, n)[rows]
            actions[t] = u.reshape(-1, m)[rows]
            costs[t] = c.reshape(-1)[rows]
            x = XM[..., m + n:m + 2 * n] + UM[..., m:]
            if dyn.CT is not None:
                x += _times(zt[..., mu:], dyn.CT)
            if t % _OVERFLOW_CHECK_EVERY == _OVERFLOW_CHECK_EVERY - 1 and not np.all(np.isfinite(x)):
                break  # an overflowed state stays non-finite: stop here, reported below
        else:
            final[...] = x.reshape(-1, n)[rows]
    done = t + 1  # steps simulated (all T unless stopped early)
    bad = ~np.isfinite(costs[:done])
    if done < T or bad.any() or not np.all(np.isfinite(final)):
        t_bad = int(np.argmax(bad.any(axis=1))) if bad.any() else done
        AK = dyn.Mx[:, m + n:m + 2 * n].T + dyn.Mu[:, m:].T @ dyn.Mx[:, :m].T
        rho = float(np.max(np.abs(np.linalg.eigvals(AK))))
        raise NumericalError(
            f"the rollout overflowed float64 at step t={t_bad} of {T}: the closed loop A - B K has "
            f"spectral radius {rho:.6g} (largest |K| entry {np.max(np.abs(dyn.Mx[:, :m])):.3g}), so the "
            f"state grows like {rho:.3g}^t; use a stabilizing gain or a shorter horizon"
        )
    return out


def _check_model_policy(lqr: Any, policy: Any) -> None:
    if not isinstance(lqr, LQR):
        raise TypeError(f"lqr must be a pgexact.LQR, got {type(lqr).__name__}")
    if not isinstance(policy, LinearGaussian):
        raise TypeError(f"policy must be a pgexact.LinearGaussian, got {type(policy).__name__}")
    if (policy.n_states, policy.n_actions) != (lqr.n_states, lqr.n_actions):
        raise ValueError(f"policy has (n_states, n_actions) = ({policy.n_states}, {policy.n_actions}), "
                         f"the LQR has ({lqr.n_states}, {lqr.n_actions})")


@np.errstate(under="ignore")
def rollout(
    lqr: LQR,
    policy: LinearGaussian,
    theta: Any,
    n_episodes: int,
    *,
    seed: Seed,
    horizon: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    executor: Executor | None = None,
) -> LQRTrajectories:
    r"""Simulate ``n_episodes`` episodes of :math:`x_{t+1} = Ax_t + Bu_t + w_t`, :math:`u_t\sim N(-Kx_t,\Sigma_u)`.

    .. math::

        x_0 = L_0 z_0,\quad u_t = -Kx_t + L_u \epsilon_t,\quad x_{t+1} = Ax_t + Bu_t + C\xi_t,
        \qquad L_0L_0^\top = \Sigma_0,\ L_uL_u^\top = \Sigma_u,\ CC^\top = W

    with standard normal :math:`z_0, \epsilon_t, \xi_t`.

    Parameters
    ----------
    lqr : LQR
        Must have ``Sigma0``.
    policy : LinearGaussian
    theta : array_like, shape (n_params,)
    n_episodes : int
    seed : int, SeedSequence or Generator
        Required; the only source of randomness (seed blocks, module docstring).
    horizon : int, optional
        Episode length T; defaults to ``lqr.horizon`` and is required for an infinite horizon
        (the rollout then estimates the truncated objective ``lqr.with_horizon(T)``).
    chunk_size : int
        Episodes simulated together (memory and executor granularity only: the episodes do not
        depend on it).
    executor : concurrent.futures.Executor, optional
        Computes the chunks on its workers; bit-identical to the serial result. A failing chunk
        raises :class:`pgexact._chunks.ChunkError` naming it and its seed.

    Returns
    -------
    LQRTrajectories

    Raises
    ------
    ValueError
        If the result would exceed :data:`MAX_BYTES` or the time loop :data:`MAX_TIME_STEPS`
        (the message says how much the call would need).
    NumericalError
        If the simulated states overflow float64 (an unstable closed loop over a long horizon).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR, LinearGaussian
    >>> lqr = LQR(A=[[0.5]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], gamma=1.0, Sigma0=[[1.0]], horizon=3)
    >>> ro = rollout(lqr, LinearGaussian(1, 1), [0.5], n_episodes=4, seed=0)
    >>> ro.states.shape, bool(np.allclose(ro.states[:, 1, 0], 0.0))  # x1 = (0.5 - 0.5) x0
    ((4, 3, 1), True)
    >>> same = rollout(lqr, LinearGaussian(1, 1), [0.5], n_episodes=4, seed=0, chunk_size=1)
    >>> bool(np.array_equal(ro.states, same.states))
    True
    """
    _check_model_policy(lqr, policy)
    theta = policy.check_theta(theta)
    N = check_positive_int("n_episodes", n_episodes)
    if horizon is None:
        if lqr.horizon is None:
            raise ValueError("horizon is required for an infinite-horizon LQR (episodes are truncated at T)")
        T = lqr.horizon
    else:
        T = check_positive_int("horizon", horizon)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor or None, got {type(executor).__name__}")
    n, m = lqr.n_states, lqr.n_actions
    nbytes = N * T * (n + m + 1) * 8
    steps = T * -(-N // chunk_size)  # time steps of the loop over all chunks
    if nbytes > MAX_BYTES or steps > MAX_TIME_STEPS:
        raise ValueError(
            f"rollout of {N} episodes x horizon {T} would need {nbytes / 2**30:.3g} GiB for the "
            f"returned arrays (limit {MAX_BYTES / 2**30:.3g} GiB) and {steps} time steps of the "
            f"simulation loop, about {steps * _SECONDS_PER_STEP:.3g} s (limit {MAX_TIME_STEPS}); "
            "use fewer episodes, a shorter horizon or a larger chunk_size"
        )
    sizes = chunk_sizes(N, chunk_size)
    Sigma0 = lqr.initial_cov("rollout")
    Su = policy.action_cov(theta)
    K = policy.gain(theta)
    Nx = 2.0 * lqr.N if lqr.has_cross else np.zeros((n, 0))
    dyn = _Dynamics(
        Mx=np.ascontiguousarray(np.hstack([-K.T, lqr.Q, lqr.A.T, Nx])),
        Mu=np.ascontiguousarray(np.hstack([lqr.R, lqr.B.T])),
        LuT=_psd_sqrt(Su).T if np.any(Su) else None,
        CT=np.array(lqr.noise_factor.T) if lqr.has_noise else None,
        L0T=_psd_sqrt(Sigma0).T, n=n, m=m, T=T, cross=lqr.has_cross,
    )
    ss = as_seed_sequence(seed)
    bounds = [int(v) for v in np.concatenate([[0], np.cumsum(sizes)])]
    # time-major buffers (batch-first views are returned): every step writes contiguous rows
    bufs = (np.empty((T, N, n)), np.empty((T, N, m)), np.empty((T, N)), np.empty((N, n)))

    def view(i: int) -> tuple:
        a, b = bounds[i], bounds[i + 1]
        return bufs[0][:, a:b], bufs[1][:, a:b], bufs[2][:, a:b], bufs[3][a:b]

    if executor is None:
        for i in range(len(sizes)):
            _run_chunk(dyn, ss, bounds[i], bounds[i + 1], out=view(i))
    else:
        futures = [executor.submit(_run_chunk, dyn, ss, bounds[i], bounds[i + 1]) for i in range(len(sizes))]
        for i, f in enumerate(futures):
            try:
                part = f.result()
            except NumericalError:
                for g in futures[i + 1:]:
                    g.cancel()
                raise
            except Exception as exc:
                for g in futures[i + 1:]:
                    g.cancel()
                first_block = bounds[i] // SEED_BLOCK  # the chunk's first seed block
                raise ChunkError(i, sizes[i], chunk_seed(ss, first_block), len(sizes), exc) from exc
            for dst, src in zip(view(i), part):
                dst[...] = src
    states, actions, costs = (b.swapaxes(0, 1) for b in bufs[:3])
    final = bufs[3]
    return LQRTrajectories(states=states, actions=actions, costs=costs, final_states=final, gamma=lqr.gamma)
