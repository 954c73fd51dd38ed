"""What every conformance driver shares: argument checks, the frozen critic's default table, and
the record of the loss gradients a library computes.

A driver runs a library's own collection, buffer, advantage and loss code on
``pgexact.gym.make_env(mdp, max_episode_steps=time_limit)`` with a tabular softmax actor
(``pi(a|s) = softmax(logits[s])_a``) and a critic frozen at ``values``, and records, batch by
batch, the ascent direction :math:`-\\partial L / \\partial\\,\\text{logits}` of the library's loss
at the parameters that collected the batch. Nothing here imports a library: each driver imports
its own, inside its functions, so that the drivers' modules import (and their doctests run)
without the optional extras.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..._validation import as_float_array, check_positive_int
from ...exact import evaluate
from ...models import FiniteMDP
from ...policies import softmax_rows

__all__ = ["DriverArgs", "check_driver_args", "check_library_kwargs", "collect_docstring", "gradient_record",
           "logits_unchanged"]


@dataclass(frozen=True)
class DriverArgs:
    """The validated arguments of a driver's ``collect`` (arrays are float64 copies)."""

    mdp: FiniteMDP
    logits: np.ndarray
    values: np.ndarray
    time_limit: int
    n_envs: int
    n_steps: int
    n_batches: int
    seed: int

    @property
    def n_states(self) -> int:
        return int(self.logits.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.logits.shape[1])


def check_driver_args(
    mdp: Any, logits: Any, values: Any, *, time_limit: Any, n_envs: Any, n_steps: Any,
    n_batches: Any, seed: Any,
) -> DriverArgs:
    """Validate a driver's arguments once, naming the one at fault.

    ``values=None`` asks for the exact discounted :math:`V^\\pi` of ``mdp`` under
    ``pi = softmax(logits)`` (infinite-horizon MDPs only: a finite-horizon ``V`` depends on time,
    which a frozen critic ``V(s)`` cannot express).

    Examples
    --------
    >>> from pgexact import mdps
    >>> import numpy as np
    >>> g = mdps.gridworld(2, 2, gamma=0.8)
    >>> a = check_driver_args(g, np.zeros((4, 4)), None, time_limit=5, n_envs=2, n_steps=4,
    ...                       n_batches=3, seed=0)
    >>> a.values.shape, a.n_actions
    ((4,), 4)
    """
    if not isinstance(mdp, FiniteMDP):
        raise TypeError(f"mdp must be a pgexact.FiniteMDP, got {type(mdp).__name__}")
    if mdp.action_mask is not None:
        raise ValueError(
            "mdp has an action_mask: the conformance drivers run libraries whose tabular actor "
            "samples every action; pass an MDP without action_mask"
        )
    S, A = mdp.n_states, mdp.n_actions
    logits = as_float_array("logits", logits, shape=(S, A))
    time_limit = check_positive_int("time_limit", time_limit)
    n_envs = check_positive_int("n_envs", n_envs)
    n_steps = check_positive_int("n_steps", n_steps)
    n_batches = check_positive_int("n_batches", n_batches)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int (the libraries take integer seeds), got {seed!r}")
    if values is None:
        if mdp.horizon is not None:
            raise ValueError(
                f"values=None asks for the exact discounted V of mdp, but mdp has horizon={mdp.horizon} "
                "(a time-indexed V): pass values, shape (S,), for the frozen critic"
            )
        values = evaluate(mdp, softmax_rows(logits)).V
    values = as_float_array("values", values, shape=(S,))
    return DriverArgs(mdp, logits, values, time_limit, n_envs, n_steps, n_batches, int(seed))


def check_library_kwargs(driver: str, given: Mapping[str, Any], allowed: Mapping[str, Any]) -> dict:
    """The library settings: ``allowed`` (the defaults) updated by ``given``; unknown names refused.

    Examples
    --------
    >>> check_library_kwargs("x", {"lam": 0.9}, {"lam": 0.95, "gamma": 0.99})
    {'lam': 0.9, 'gamma': 0.99}
    """
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise TypeError(
            f"{driver} driver got an unknown setting {unknown[0]!r}; settings: {', '.join(sorted(allowed))}"
        )
    out = dict(allowed)
    out.update(given)
    return out


class gradient_record:
    """Collect the gradients that backward passes write into one torch parameter.

    A hook on the parameter sees the loss gradient as autograd computes it, before any gradient
    clipping or optimizer step; :meth:`take` returns and forgets those seen since the last call,
    as float64 arrays.
    """

    def __init__(self, parameter: Any, transform: Any = None) -> None:
        self._grads: list[np.ndarray] = []
        self._transform = transform
        self._handle = parameter.register_hook(self._hook)

    def _hook(self, grad: Any) -> None:
        g = grad.detach().to("cpu").double().numpy().copy()
        self._grads.append(g if self._transform is None else self._transform(g))

    def take(self) -> list[np.ndarray]:
        out, self._grads = self._grads, []
        return out

    def remove(self) -> None:
        self._handle.remove()


def logits_unchanged(before: np.ndarray, after: Any, driver: str) -> None:
    """Raise if the library moved the actor's logits (a driver must only record)."""
    after = np.asarray(after, dtype=np.float64)
    moved = after != before
    if moved.any():
        idx = tuple(int(i) for i in np.argwhere(moved)[0])
        raise RuntimeError(
            f"{driver}: the library moved logits{list(idx)} from {before[idx]!r} to {after[idx]!r}; "
            "the driver must record updates without stepping"
        )


def _paragraph(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=100, initial_indent=" " * 8,
                         subsequent_indent=" " * 8)


def collect_docstring(name: str, what: str, *, sizes: str, seed: str, overrides: str) -> str:
    """The numpydoc docstring of a driver's ``collect``, shared by every driver.

    ``what`` names the library code run; ``sizes``, ``seed`` and ``overrides`` describe, in the
    library's own terms, the environments and batch sizes, what ``seed`` seeds, and the settings
    ``**library_kwargs`` may override.

    Examples
    --------
    >>> doc = collect_docstring("x", "X's PPO", sizes="s.", seed="t.", overrides="u.")
    >>> doc.splitlines()[0]
    "Run X's PPO on ``make_env(mdp, max_episode_steps=time_limit)``; record each batch's update."
    """
    return f"""Run {what} on ``make_env(mdp, max_episode_steps=time_limit)``; record each batch's update.

    Parameters
    ----------
    mdp : FiniteMDP
    logits : array_like, shape (S, A)
        The actor's logits table.
    values : array_like, shape (S,), optional
        The frozen critic; default the exact discounted :math:`V^\\pi` of ``mdp``.
    time_limit, n_envs, n_steps, n_batches : int
{_paragraph(sizes)}
    seed : int
{_paragraph(seed)}
    **library_kwargs
{_paragraph("Overrides of :data:`DEFAULTS` " + overrides)}

    Returns
    -------
    DriverRun
        ``updates`` of shape (n_batches, S, A), the ascent directions
        :math:`-\\partial L/\\partial\\,\\text{{logits}}` of consecutive batches of one continuous
        stream, recorded at ``logits`` (never moved); ``config`` holds the library's settings and
        the convention fields (``gamma``, ``lam``, ``ent_coef``, ``normalize_advantages``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import mdps
    >>> from pgexact.conformance.drivers import get_driver
    >>> run = get_driver("{name}").collect(mdps.gridworld(2, 2, gamma=0.8), np.zeros((4, 4)),
    ...     time_limit=5, n_envs=2, n_steps=8, n_batches=2, seed=0)  # doctest: +SKIP
    >>> run.updates.shape  # doctest: +SKIP
    (2, 4, 4)
    """
