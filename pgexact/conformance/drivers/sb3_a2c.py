r"""Driver ``"sb3-a2c"``: Stable-Baselines3's A2C, its own collection, buffer, GAE and loss.

The recorded update of a batch is :math:`-\partial L/\partial\,\text{logits}` of SB3's A2C loss,
one gradient of the whole buffer at the collecting parameters:

.. math::

    L = -\frac{1}{n_{\text{envs}} n_{\text{steps}}}\sum_j \hat A_j \log\pi_\theta(a_j|s_j)
        - c_{\text{ent}} \frac{1}{n_{\text{envs}} n_{\text{steps}}}\sum_j H(\pi_\theta(\cdot|s_j)) + c_v L_V

(Mnih et al. 2016, "Asynchronous methods for deep reinforcement learning", Algorithm S3, with
SB3's GAE(λ) advantages; SB3's ``a2c/a2c.py``). See :mod:`pgexact.conformance.drivers._sb3` for
how SB3 treats time limits and the buffer's end.

SB3's defaults are kept (``gae_lambda=1.0``, ``normalize_advantage=False``, ``ent_coef=0.0``,
``max_grad_norm=0.5``), except γ, which is the MDP's unless ``gamma`` is passed, and ``n_steps``,
which the caller gives (SB3's default is 5).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._driver import DriverRun
from . import _sb3
from ._common import check_driver_args, check_library_kwargs

NAME = "sb3-a2c"
__all__ = ["NAME", "LIBRARY", "DEFAULTS"]  # collect: reached through get_driver (see drivers/__init__)
LIBRARY = _sb3.LIBRARY

#: SB3 A2C's defaults for the settings a caller may override (γ: the MDP's).
DEFAULTS: dict[str, Any] = {
    "gamma": None, "gae_lambda": 1.0, "normalize_advantage": False, "ent_coef": 0.0, "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}


def collect(mdp: Any, logits: Any, values: Any = None, *, time_limit: int, n_envs: int, n_steps: int,
            n_batches: int, seed: int, **library_kwargs: Any) -> DriverRun:
    """Run SB3's A2C on ``make_env(mdp, max_episode_steps=time_limit)``; record each batch's update.

    Parameters
    ----------
    mdp : FiniteMDP
    logits : array_like, shape (S, A)
        The actor's logits table, :math:`\\pi(a|s) = \\mathrm{softmax}(\\text{logits}[s])_a`.
    values : array_like, shape (S,), optional
        The frozen critic; default the exact discounted :math:`V^\\pi` of ``mdp``.
    time_limit, n_envs, n_steps, n_batches : int
        Episode time limit, environments (``DummyVecEnv``), steps per environment per batch and
        batches (one continuous stream).
    seed : int
        SB3's ``seed``.
    **library_kwargs
        Overrides of :data:`DEFAULTS` (SB3's A2C argument names).

    Returns
    -------
    DriverRun
        ``updates`` of shape (n_batches, S, A).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import mdps
    >>> from pgexact.conformance.drivers import sb3_a2c
    >>> run = sb3_a2c.collect(mdps.gridworld(2, 2, gamma=0.8), np.zeros((4, 4)), time_limit=5,
    ...                       n_envs=2, n_steps=8, n_batches=2, seed=0)  # doctest: +SKIP
    >>> run.updates.shape  # doctest: +SKIP
    (2, 4, 4)
    """
    args = check_driver_args(mdp, logits, values, time_limit=time_limit, n_envs=n_envs, n_steps=n_steps,
                             n_batches=n_batches, seed=seed)
    settings = check_library_kwargs(NAME, library_kwargs, DEFAULTS)
    if settings["gamma"] is None:
        settings["gamma"] = args.mdp.gamma
    updates, extra = _sb3.run("A2C", args, settings, lambda model: 1)
    config = dict(settings, **extra, n_envs=args.n_envs, n_steps=args.n_steps, time_limit=args.time_limit,
                  lam=float(settings["gae_lambda"]),
                  normalize_advantages="batch" if settings["normalize_advantage"] else False, seed=args.seed)
    return DriverRun(np.asarray(updates), LIBRARY, _sb3.version(), config, NAME)
