"""All update rules in one namespace: :mod:`.pg` (PG, NPG), :mod:`.trpo` and :mod:`.ppo`."""

from __future__ import annotations

from .pg import NPGStep, PGStep, npg_step, pg_step
from .ppo import PPOStep, ppo_dual_update, ppo_kl_update, ppo_update
from .trpo import TRPOStep, conjugate_gradient, trpo_step

__all__ = [
    "PGStep",
    "NPGStep",
    "TRPOStep",
    "PPOStep",
    "pg_step",
    "npg_step",
    "trpo_step",
    "ppo_update",
    "ppo_kl_update",
    "ppo_dual_update",
]
