"""`pgexact verify` catches one-line mistakes in the code its theorems guard.

Each mutation changes the behaviour of one library function the way a plausible one-line mistake
would, by monkeypatching (the patched function is named in the table), and the listed theorems must
fail under it while they pass without it. The table is the single place mapping a mutation to the
function it patches and to the theorems that catch it; if a function moves, re-point its entry.
"""

from __future__ import annotations

import importlib
import math
import sys
import types
from typing import Callable

import numpy as np
import pytest

import pgexact.estimators as estimators
import pgexact.exact.divergences as divergences
import pgexact.sampling.alias as alias
import pgexact.updates.sources as sources
import pgexact.updates.trpo as trpo
from pgexact.cli import run_verify

# the module, not the function pgexact.sampling.rollout that shadows it as an attribute
rollout_module = importlib.import_module("pgexact.sampling.rollout")


def _swap_kl_direction(mp: pytest.MonkeyPatch) -> None:
    """kl_per_state(p, q) computes KL(q || p)."""
    original = divergences.kl_per_state
    mp.setattr(divergences, "kl_per_state", lambda p, q: original(q, p))


def _alias_thresholds_unscaled(mp: pytest.MonkeyPatch) -> None:
    """Alias thresholds q = p instead of q = K p (the K of the column split dropped)."""
    original = alias.build_alias

    def build(probs):
        thr, al = original(probs)
        return thr / np.shape(probs)[1], al

    mp.setattr(alias, "build_alias", build)


class _GammaGeometric(np.random.Generator):
    """A generator whose geometric draws use success probability 1 - p in place of p."""

    def geometric(self, p, size=None):
        return super().geometric(1.0 - np.asarray(p), size)


def _geometric_with_gamma(mp: pytest.MonkeyPatch) -> None:
    """Geometric stopping drawn with success probability gamma instead of 1 - gamma.

    The chunk's generator in ``sampling.rollout`` draws ``geometric(gamma)`` where the code asks
    for ``geometric(1 - gamma)``; every other draw is unchanged.
    """
    shim = types.ModuleType("numpy_with_gamma_geometric")
    shim.__dict__.update(np.__dict__)
    shim.random = types.SimpleNamespace(**{**np.random.__dict__, "Generator": _GammaGeometric})
    mp.setattr(rollout_module, "np", shim)


def _baseline_fitted_on_gradient_episodes(mp: pytest.MonkeyPatch) -> None:
    """learned_baseline fits its critic on the gradient episodes themselves."""
    original = estimators.learned_baseline
    mp.setattr(
        estimators,
        "learned_baseline",
        lambda trajs_baseline, trajs_gradient, policy, theta, **kw: original(trajs_gradient, trajs_gradient, policy, theta, **kw),
    )


def _trpo_full_step_without_2(mp: pytest.MonkeyPatch) -> None:
    """beta_0 = sqrt(delta / x^T F x): the 2 of sqrt(2 delta / x^T F x) dropped in trpo_step.

    Only the square roots taken in ``trpo_step`` itself change (the full step is its one sqrt);
    those of ``conjugate_gradient``, in the same module, are left exact.
    """
    shim = types.SimpleNamespace(**{k: getattr(math, k) for k in dir(math) if not k.startswith("_")})
    shim.sqrt = lambda v: math.sqrt(v / 2.0 if sys._getframe(1).f_code.co_name == "trpo_step" else v)
    mp.setattr(trpo, "math", shim)


def _ppo_clip_bounds_swapped(mp: pytest.MonkeyPatch) -> None:
    """np.clip(r, 1 + eps, 1 - eps) in the clipped objective."""
    shim = types.ModuleType("numpy_with_swapped_clip")
    shim.__dict__.update(np.__dict__)
    shim.clip = lambda a, lo, hi, *args, **kw: np.clip(a, hi, lo, *args, **kw)
    mp.setattr(sources, "np", shim)


def _adjoint_solve_not_transposed(mp: pytest.MonkeyPatch) -> None:
    """The visitation's derivative solved with I - gamma P_pi instead of its transpose."""
    import pgexact.exact.second_order as second_order

    original = second_order._SecondOrder._solve
    mp.setattr(second_order._SecondOrder, "_solve", lambda self, B, transposed: original(self, B, False))


def _lqr_hessian_gain_error_sign(mp: pytest.MonkeyPatch) -> None:
    """E_K of the LQR Hessian's derivative equations with the opposite sign (both horizons)."""
    import pgexact.lqr.hessian as lqr_hessian

    original = lqr_hessian._Derivatives.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.E = -self.E

    mp.setattr(lqr_hessian._Derivatives, "__init__", init)


#: mutation -> (the patch, theorems that must fail under it)
MUTATIONS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], tuple[str, ...]]] = {
    "KL direction swapped in exact.divergences.kl_per_state": (_swap_kl_direction, ("kl.direction",)),
    "alias thresholds not scaled by K in sampling.alias.build_alias": (
        _alias_thresholds_unscaled,
        ("sampler.alias_tables_exact", "sampler.rollout_marginals"),
    ),
    "geometric stopping with gamma instead of 1 - gamma in sampling.rollout._run_chunk": (
        _geometric_with_gamma,
        ("sampler.geometric_stopping",),
    ),
    "learned baseline fitted on the gradient episodes in estimators.learned_baseline": (
        _baseline_fitted_on_gradient_episodes,
        ("estimators.learned_baseline_independent",),
    ),
    "TRPO full step missing its factor 2 in updates.trpo.trpo_step": (_trpo_full_step_without_2, ("updates.trpo_full_step",)),
    "PPO clip bounds swapped in updates.sources.clipped_objective": (
        _ppo_clip_bounds_swapped,
        ("updates.ppo_clipped_objective_value",),
    ),
    "visitation derivative solved with M instead of M^T in exact.second_order._SecondOrder._solve": (
        _adjoint_solve_not_transposed,
        ("hessian.complex_step", "hessian.pi_vector_product", "hessian.symmetric"),
    ),
    "sign of E_K flipped in lqr.hessian._Derivatives": (_lqr_hessian_gain_error_sign, ("hessian.lqr_cost",)),
}

INSTANCES = 4


def _verdicts(theorem_ids: tuple[str, ...]) -> dict[str, bool]:
    out = {}
    for tid in theorem_ids:
        rows = run_verify(INSTANCES, 0, tid, progress=False)
        out[tid] = next(r for r in rows if r["id"] == tid)["passed"]
    return out


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_verify_fails_under_the_mutation(mutation, monkeypatch):
    patch, theorem_ids = MUTATIONS[mutation]
    assert all(_verdicts(theorem_ids).values()), "the theorems must pass on the unmutated code"
    with monkeypatch.context() as mp:
        patch(mp)
        verdicts = _verdicts(theorem_ids)
    caught = [tid for tid, passed in verdicts.items() if not passed]
    assert caught == list(theorem_ids), f"{mutation}: not caught by {set(theorem_ids) - set(caught)}"
