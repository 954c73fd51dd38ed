"""Ready-made finite MDPs: random, chain, gridworld, bandit and Sutton & Barto's short corridor."""

from ._builders import ShortCorridor, bandit, chain, gridworld, random_mdp, short_corridor
from .classic_control import DiscretizedControl, cartpole, mountain_car, pendulum, richardson

__all__ = ["random_mdp", "chain", "gridworld", "bandit", "short_corridor", "ShortCorridor", "richardson",
           "pendulum", "mountain_car", "cartpole", "DiscretizedControl"]
