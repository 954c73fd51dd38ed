"""Plausible mistakes in :mod:`pgexact.exact`: evaluation, visitation, gradients, Fisher, divergences."""

from . import Mistake

MISTAKES = [
    Mistake(
        "exact-visitation-finite-drop-gamma", "pgexact/exact/evaluation.py",
        "return (mdp.gamma ** np.arange(mdp.horizon)) @ p",
        "return np.ones(mdp.horizon) @ p",
        "finite-horizon discounted visitation without the gamma^t weights",
        ("tests/test_exact.py",),
    ),
    Mistake(
        "exact-Q-drop-gamma", "pgexact/exact/evaluation.py",
        "Q = mdp.r + mdp.gamma * mdp._expected_next(V)",
        "Q = mdp.r + mdp._expected_next(V)",
        "discounted Q = r + P V, the gamma dropped",
        ("tests/test_exact.py",),
    ),
]
