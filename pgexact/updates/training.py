"""A training loop over any update rule, with exact per-iteration records."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._validation import ReadOnlyOnCopy, freeze_arrays
from .._random import as_seed_sequence
from .._validation import check_positive_int
from ._checks import check_source

__all__ = ["TrainingHistory", "train", "PROGRESS_THRESHOLD"]

#: With ``progress=None``, runs of at least this many iterations show a tqdm progress bar.
PROGRESS_THRESHOLD = 500


@dataclass(frozen=True, eq=False)
class TrainingHistory(ReadOnlyOnCopy):
    r"""Per-iteration record of :func:`train` (arrays read-only).

    Attributes
    ----------
    theta : numpy.ndarray, shape (n_params,)
        Final parameters.
    thetas : numpy.ndarray, shape (n_iterations + 1, n_params)
        Every iterate, the initial one first.
    J : numpy.ndarray, shape (n_iterations + 1,)
        Exact J of every iterate (NaN where the source cannot compute it).
    kl : numpy.ndarray, shape (n_iterations,)
        Exact KL moved, :math:`E_{s\sim d_{old}} KL(\pi_{old}\|\pi_{new})` (NaN if unavailable).
    step_size : numpy.ndarray, shape (n_iterations,)
        The update's own step size (learning rate, NPG α, accepted TRPO β, ...).
    step_norm : numpy.ndarray, shape (n_iterations,)
        :math:`\|\theta_{k+1} - \theta_k\|_2`.
    wall_time : numpy.ndarray, shape (n_iterations,)
        Seconds spent in each update call (records excluded).
    results : tuple
        The update's result object of every iteration (its diagnostics).
    """

    theta: np.ndarray
    thetas: np.ndarray
    J: np.ndarray
    kl: np.ndarray
    step_size: np.ndarray
    step_norm: np.ndarray
    wall_time: np.ndarray
    results: tuple

    def __post_init__(self) -> None:
        freeze_arrays(self, ("theta", "thetas", "J", "kl", "step_size", "step_norm", "wall_time"))

    @property
    def n_iterations(self) -> int:
        """Number of updates performed."""
        return int(self.kl.shape[0])


def _maybe(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _name(update: Callable[..., Any]) -> str:
    return getattr(update, "__name__", None) or repr(update)


def _new_theta(update: Callable[..., Any], res: Any, n_params: int, k: int) -> np.ndarray:
    """``res.theta`` as a finite float vector of length ``n_params``, or a clear error."""
    if not hasattr(res, "theta"):
        raise TypeError(
            f"update {_name(update)} returned {type(res).__name__} at iteration {k}, expected a "
            "result with a .theta attribute (as pg_step, npg_step, trpo_step and ppo_update return)"
        )
    try:
        new = np.asarray(res.theta, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"update {_name(update)} returned a .theta that is not an array of numbers at "
            f"iteration {k}: {exc}"
        ) from None
    if new.shape != (n_params,):
        raise ValueError(
            f"update {_name(update)} returned .theta of shape {new.shape} at iteration {k}, "
            f"expected ({n_params},)"
        )
    if not np.all(np.isfinite(new)):
        raise ValueError(
            f"update {_name(update)} returned a non-finite .theta at iteration {k} (first at "
            f"index {int(np.flatnonzero(~np.isfinite(new))[0])})"
        )
    return new


def train(
    update: Callable[..., Any],
    source: Any,
    theta0: Any,
    n_iterations: int,
    *,
    seed: Any = None,
    progress: bool | None = None,
    **update_kwargs: Any,
) -> TrainingHistory:
    r"""Run ``n_iterations`` of ``update(source, theta, seed=..., **kwargs)`` and record everything.

    After each update, exact J of the new iterate and the exact KL moved are recorded when the
    source offers them (``source.exact_J``, ``source.exact_kl``; the sampled source on a finite
    MDP does). Stateful updates (the adaptive β of :func:`ppo_kl_update`, the multiplier λ of
    :func:`ppo_dual_update`) hand their next coefficient on through ``result.carry()``.

    Parameters
    ----------
    update : callable
        :func:`pg_step`, :func:`npg_step`, :func:`trpo_step`, :func:`ppo_update`, ... or any
        function ``(source, theta, *, seed, **kwargs) -> result`` with ``result.theta``.
    source : ExactSource or SampledSource
    theta0 : array_like, shape (n_params,)
    n_iterations : int
    seed : optional
        Spawned into one child seed per iteration (needed by sampled sources and minibatching).
    progress : bool, optional
        Show a tqdm progress bar; default: only for runs of at least
        :data:`PROGRESS_THRESHOLD` iterations.
    **update_kwargs :
        Passed to every call (e.g. ``lr=0.1`` or ``delta=0.01``).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import ExactSource, TabularSoftmax
    >>> from pgexact.updates import npg_step
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> hist = train(npg_step, ExactSource(mdp, TabularSoftmax(3, 2)), np.zeros(6), 20, delta=0.05)
    >>> hist.J.shape, bool(hist.J[-1] > hist.J[0])
    ((21,), True)
    """
    source = check_source(source)
    if not callable(update):
        raise TypeError(f"update must be callable, got {type(update).__name__}")
    theta = source.policy.check_theta(theta0)
    n = check_positive_int("n_iterations", n_iterations)
    seeds = list(as_seed_sequence(seed).spawn(n)) if seed is not None else [None] * n
    show = (n >= PROGRESS_THRESHOLD) if progress is None else bool(progress)
    exact_J = getattr(source, "exact_J", None)
    exact_kl = getattr(source, "exact_kl", None)

    thetas = [theta]
    J = [_maybe(exact_J(theta)) if exact_J else float("nan")]
    kl, sizes, norms, times, results = [], [], [], [], []
    kwargs = dict(update_kwargs)
    from tqdm.auto import tqdm  # imported here: tqdm.auto pulls in asyncio and ssl (~0.1 s)

    for k in tqdm(range(n), disable=not show, desc=getattr(update, "__name__", "train"), leave=False):
        t0 = time.perf_counter()
        res = update(source, theta, seed=seeds[k], **kwargs)
        times.append(time.perf_counter() - t0)
        new = _new_theta(update, res, theta.shape[0], k)
        kl.append(_maybe(exact_kl(theta, new)) if exact_kl else float("nan"))
        J.append(_maybe(exact_J(new)) if exact_J else float("nan"))
        sizes.append(float(getattr(res, "step_size", float("nan"))))
        norms.append(float(np.linalg.norm(new - theta)))
        results.append(res)
        if hasattr(res, "carry"):
            carry = res.carry()
            if not isinstance(carry, dict):
                raise TypeError(
                    f"update {_name(update)} returned a result whose carry() gave "
                    f"{type(carry).__name__}, expected a dict of keyword arguments for the next call"
                )
            kwargs.update(carry)
        theta = new
        thetas.append(theta)
    return TrainingHistory(
        theta=theta.copy(),
        thetas=np.array(thetas),
        J=np.array(J),
        kl=np.array(kl),
        step_size=np.array(sizes),
        step_norm=np.array(norms),
        wall_time=np.array(times),
        results=tuple(results),
    )
