r"""Driver ``"sb3-ppo"``: Stable-Baselines3's PPO, its own collection, buffer, GAE and loss.

The recorded update of a batch is the mean over the first epoch's minibatches of
:math:`-\partial L/\partial\,\text{logits}` of SB3's PPO loss at the collecting parameters
(ratio 1, so the clipped and unclipped surrogates have the same gradient):

.. math::

    L = -\frac{1}{|B|}\sum_{j \in B} \tilde A_j \,\frac{\pi_\theta(a_j|s_j)}{\pi_{\text{old}}(a_j|s_j)}
        - c_{\text{ent}} \frac{1}{|B|}\sum_{j\in B} H(\pi_\theta(\cdot|s_j)) + c_v L_V,

with :math:`\tilde A` the GAE(λ) advantages standardized within the minibatch B (Schulman et al.
2017, "Proximal policy optimization algorithms", eq. 7 and 9; SB3's ``ppo/ppo.py``). See
:mod:`pgexact.conformance.drivers._sb3` for how SB3 treats time limits and the buffer's end.

SB3's defaults are kept (``batch_size=64``, ``n_epochs=10``, ``gae_lambda=0.95``,
``normalize_advantage=True``, ``ent_coef=0.0``, ``clip_range=0.2``, ``max_grad_norm=0.5``),
except γ, which is the MDP's unless ``gamma`` is passed (the update is compared with the policy
gradient of the MDP's own discount).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._driver import DriverRun
from . import _sb3
from ._common import check_driver_args, check_library_kwargs, collect_docstring

NAME = "sb3-ppo"
__all__ = ["NAME", "LIBRARY", "DEFAULTS"]  # collect: reached through get_driver (see drivers/__init__)
LIBRARY = _sb3.LIBRARY

#: SB3 PPO's defaults for the settings a caller may override (γ: the MDP's, see the module docstring).
DEFAULTS: dict[str, Any] = {
    "gamma": None, "gae_lambda": 0.95, "batch_size": 64, "n_epochs": 10, "normalize_advantage": True,
    "ent_coef": 0.0, "clip_range": 0.2, "vf_coef": 0.5, "max_grad_norm": 0.5, "target_kl": None,
}


def collect(mdp: Any, logits: Any, values: Any = None, *, time_limit: int, n_envs: int, n_steps: int,
            n_batches: int, seed: int, **library_kwargs: Any) -> DriverRun:
    args = check_driver_args(mdp, logits, values, time_limit=time_limit, n_envs=n_envs, n_steps=n_steps,
                             n_batches=n_batches, seed=seed)
    settings = check_library_kwargs(NAME, library_kwargs, DEFAULTS)
    if settings["gamma"] is None:
        settings["gamma"] = args.mdp.gamma
    updates, extra = _sb3.run("PPO", args, settings, _sb3.ppo_minibatches)
    rows = args.n_envs * args.n_steps
    norm = (("minibatch" if settings["batch_size"] < rows else "batch")
            if settings["normalize_advantage"] else False)
    config = dict(settings, **extra, n_envs=args.n_envs, n_steps=args.n_steps, time_limit=args.time_limit,
                  lam=float(settings["gae_lambda"]), normalize_advantages=norm, seed=args.seed)
    return DriverRun(np.asarray(updates), LIBRARY, _sb3.version(), config, NAME)


collect.__doc__ = collect_docstring(
    "sb3-ppo", "SB3's PPO",
    sizes=("Episode time limit, environments (``DummyVecEnv``), steps per environment per batch "
        "(SB3's ``n_steps``) and batches (one continuous stream)."),
    seed=("SB3's ``seed`` (it seeds Python's, numpy's and torch's global generators and env i "
        "with ``seed + i``)."),
    overrides=("(SB3's PPO argument names)."))
