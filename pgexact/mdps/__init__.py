"""Ready-made finite MDPs: random, chain, gridworld, bandit and Sutton & Barto's short corridor."""

from ._builders import ShortCorridor, bandit, chain, gridworld, random_mdp, short_corridor

__all__ = ["random_mdp", "chain", "gridworld", "bandit", "short_corridor", "ShortCorridor"]
