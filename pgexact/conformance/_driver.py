"""The record a conformance driver returns (:class:`DriverRun`) and the batch format of user update functions.

A driver is a module exposing ``NAME``, ``LIBRARY`` and
``collect(mdp, logits, values, *, time_limit, n_envs, n_steps, n_batches, seed, **library_kwargs)
-> DriverRun``: it runs the library's own collection, buffer, advantage and loss code on
``pgexact.gym.make_env(mdp, max_episode_steps=time_limit)`` with a tabular softmax actor at
``logits`` (shape (S, A)) and a critic frozen at ``values`` (shape (S,)), and records, batch by
batch from one continuous stream, the update :math:`-\\partial L/\\partial\\,\\text{logits}`
evaluated at ``logits`` (parameters never moved).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .._validation import as_float_array

__all__ = ["DriverRun", "TransitionBatch"]


@dataclass(frozen=True)
class DriverRun:
    """Updates recorded by a driver, batch by batch, from one continuous stream.

    Attributes
    ----------
    updates : numpy.ndarray, shape (n_batches, S, A)
        The recorded updates (ascent directions in the logits), read-only.
    library : str
        The library's distribution name, e.g. ``"stable-baselines3"``.
    version : str
        The installed library's ``__version__``.
    config : Mapping
        The settings used (the library's defaults unless overridden). Keys named like
        :class:`~pgexact.conformance.Convention` fields (``gamma``, ``lam``, ``ent_coef``,
        ``normalize_advantages``, ``n_envs``, ``n_steps``, ``time_limit``) are read by
        :func:`~pgexact.conformance.audit`.
    preset : str or None
        The name of the library's documented-default convention in
        :data:`~pgexact.conformance.PRESETS`.

    Examples
    --------
    >>> import numpy as np
    >>> run = DriverRun(np.zeros((3, 2, 2)), "mine", "0.1", {"gamma": 0.9}, None)
    >>> run.updates.shape
    (3, 2, 2)
    """

    updates: np.ndarray
    library: str
    version: str
    config: Mapping[str, Any] = field(default_factory=dict)
    preset: str | None = None

    def __post_init__(self) -> None:
        u = as_float_array("updates", self.updates)
        if u.ndim != 3 or u.shape[0] < 1:
            raise ValueError(f"updates must have shape (n_batches, S, A) with n_batches >= 1, got shape {u.shape}")
        u.flags.writeable = False
        object.__setattr__(self, "updates", u)
        for name in ("library", "version"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.config, Mapping):
            raise TypeError(f"config must be a Mapping, got {type(self.config).__name__}")
        object.__setattr__(self, "config", dict(self.config))
        if self.preset is not None and not isinstance(self.preset, str):
            raise TypeError(f"preset must be None or a str, got {type(self.preset).__name__}")

    @property
    def n_batches(self) -> int:
        """Number of recorded batches."""
        return int(self.updates.shape[0])


@dataclass(frozen=True)
class TransitionBatch:
    """One batch of a vector environment's transitions, arrays of shape (n_steps, n_envs).

    What a user's update function receives (see :func:`~pgexact.conformance.audit`). Row ``j``
    of column ``e`` is the ``j``-th step of environment ``e`` in this batch; the stream goes on
    in the next batch (environments are not reset between batches).

    Attributes
    ----------
    obs : int array
        Observation (state index) the action was taken in.
    actions : int array
    rewards : float array
    next_obs : int array
        The observation the environment returned: under same-step autoreset, the reset
        observation after an episode's end; under next-step autoreset the final observation.
    final_obs : int array
        The state the step entered (equal to ``next_obs`` except at same-step resets), i.e.
        ``info["final_obs"]`` / SB3's ``terminal_observation``.
    terminated, truncated : bool arrays
        Gymnasium's flags (both False on the reset rows of next-step autoreset).
    episode_step : int array
        Time in episode of ``obs`` (the length of the ended episode on a next-step reset row).

    Examples
    --------
    >>> import numpy as np
    >>> z = np.zeros((2, 1), dtype=np.int64)
    >>> b = TransitionBatch(z, z, z * 0.0, z, z, z.astype(bool), z.astype(bool), z)
    >>> b.n_steps, b.n_envs
    (2, 1)
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    final_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_step: np.ndarray

    def __post_init__(self) -> None:
        shape = None
        for name in ("obs", "actions", "rewards", "next_obs", "final_obs", "terminated", "truncated",
                     "episode_step"):
            value = getattr(self, name)
            try:
                arr = np.array(value, copy=True)
            except Exception:  # ragged nested sequences and the like
                raise TypeError(f"{name} must be an array of shape (n_steps, n_envs)") from None
            kind = "b" if name in ("terminated", "truncated") else ("f" if name == "rewards" else "i")
            if not (arr.dtype.kind == kind or (kind == "f" and arr.dtype.kind in "iu")
                    or (kind == "i" and arr.dtype.kind == "u")):
                what = {"b": "booleans", "f": "real numbers", "i": "integers"}[kind]
                raise TypeError(f"{name} must be an array of {what}, got dtype {arr.dtype}")
            if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
                raise ValueError(f"{name} must have shape (n_steps, n_envs) with both >= 1, got {arr.shape}")
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise ValueError(f"{name} has shape {arr.shape}, expected (n_steps, n_envs) = {shape} as obs")
            if kind == "f":
                arr = as_float_array(name, arr)
            elif kind == "i" and arr.size and arr.min() < 0:
                raise ValueError(f"{name} must be >= 0, got {arr.min()}")
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    @property
    def n_steps(self) -> int:
        return int(self.obs.shape[0])

    @property
    def n_envs(self) -> int:
        return int(self.obs.shape[1])
