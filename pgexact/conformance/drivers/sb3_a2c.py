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
from ._common import check_driver_args, check_library_kwargs, collect_docstring

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


collect.__doc__ = collect_docstring(
    "sb3-a2c", "SB3's A2C",
    sizes=("Episode time limit, environments (``DummyVecEnv``), steps per environment per batch "
        "and batches (one continuous stream)."),
    seed=("SB3's ``seed``."),
    overrides=("(SB3's A2C argument names)."))
