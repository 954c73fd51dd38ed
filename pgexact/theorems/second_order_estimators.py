r"""Theorems about the exact second-order API and the second-order Monte Carlo estimators.

The dense π-Hessian and the one-call ``(J, ∇J, ∇²J)`` against complex-step derivatives of
gradients written from the model's data (:mod:`pgexact.theorems.second_order`); the Hessian-vector
product integrated along a segment (Gauss–Legendre) against the difference of two reference
gradients (the identity behind Shen et al.'s Hessian-aided estimator); and the exact means, by
trajectory enumeration, of the likelihood-ratio estimator with the total return, Loaded DiCE with
a baseline, Shen et al.'s Hessian estimator and its gradient-difference estimator.
"""

from __future__ import annotations

import zlib

import numpy as np

from .. import exact
from ..exact.second_order import _SecondOrder
from . import _reference as ref
from .finite import COMPLEX_REASON, IDENTITY_TOL, Problem, _multi_step, random_problem
from .registry import identity
from .second_order import SOURCE, _cs_jacobian, _frozen, _ref_gradient, _ref_hessian, _ref_pi_gradient

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []

DICE_SOURCE = (
    "Foerster et al. 2018, 'DiCE: the infinitely differentiable Monte Carlo estimator', ICML; "
    "Farquhar, Whiteson & Foerster 2019, 'Loaded DiCE: trading off bias and variance in any-order score "
    "function estimators for reinforcement learning', NeurIPS"
)
SHEN_SOURCE = "Shen, Ribeiro, Hassani, Qian & Mi 2019, 'Hessian aided policy gradient', ICML"
ENUM_REASON = "an exact expectation over every trajectory (enumeration): rounding only; " + COMPLEX_REASON

#: Gauss-Legendre nodes on [0, 1] for the integrals over a (the integrand is analytic in a).
GL_NODES = 16


# ----------------------------------------------------------------------------- dense pi-Hessian
def _pi_dense_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
    pr = random_problem(rng, max_states=4, min_horizon=2, finite_gammas=(0.9, 0.5))
    return pr, pr.policy.probs(pr.theta)


def _pi_dense_expected(inst) -> np.ndarray:
    pr, pi = inst
    S, A = pi.shape
    return _cs_jacobian(lambda x: _ref_pi_gradient(pr, x.reshape(S, A)).reshape(-1), pi.reshape(-1))


def _pi_dense_value_term_only(inst) -> np.ndarray:
    pr, pi = inst
    n = pi.size
    return _SecondOrder(pr.mdp, pi, None).value_term(np.eye(n).reshape(*pi.shape, n)).reshape(n, n)


identity(
    id="hessian.pi_dense",
    statement=r"\big[\nabla^2_\pi J\big]_{(s,a),(s',a')} = \partial^2 J/\partial\pi(a|s)\,\partial\pi(a'|s'),"
    r"\ \text{every column } \nabla^2_\pi J\,[e_{s'a'}]",
    source=SOURCE + " (in the coordinates pi(a|s), free variables)",
    reference="complex-step Jacobian (h = 1e-30, one column per entry of pi, off the simplex) of dJ/dpi = "
    "rho(s) Q(s, a) written out with a dense LU solve (finite horizon: recursions)",
    instance=_pi_dense_instance,
    computed=lambda inst: exact.pi_hessian(inst[0].mdp, inst[1]),
    expected=_pi_dense_expected,
    tolerance=IDENTITY_TOL,
    tolerance_reason=COMPLEX_REASON,
    mutants={"the visitation's derivative dropped (delta rho = 0)": _pi_dense_value_term_only},
    default_instances=6,
)


# ----------------------------------------------------------------------------- J, grad, Hessian at once
def _vgh_expected(pr: Problem) -> tuple[float, np.ndarray, np.ndarray]:
    pi = ref.probs(pr.policy, pr.theta)
    return float(ref.values(pr.mdp, pi).J), _ref_gradient(pr, pr.theta), _ref_hessian(pr)


def _vgh_frozen_q(pr: Problem) -> tuple[float, np.ndarray, np.ndarray]:
    J, g, _ = _vgh_expected(pr)
    return J, g, _ref_hessian(pr, frozen_Q=_frozen(pr)[1])


identity(
    id="hessian.value_gradient_hessian",
    statement=r"(J, \nabla_\theta J, \nabla^2_\theta J) \text{ from one evaluation}",
    source=SOURCE + "; course notes 'Policy Gradient', section 'Policy Gradient Theorem'",
    reference="J from a dense LU solve (finite horizon: backward recursion), the policy gradient rho pi psi A "
    "written out, and its complex-step Jacobian (h = 1e-30)",
    instance=_multi_step,
    computed=lambda pr: exact.value_gradient_hessian(pr.mdp, pr.policy, pr.theta),
    expected=_vgh_expected,
    tolerance=IDENTITY_TOL,
    tolerance_reason=COMPLEX_REASON,
    mutants={"action values held fixed in the Hessian (the delta Q term dropped)": _vgh_frozen_q},
    default_instances=3,
)


# ----------------------------------------------------------------------------- integral of H along a segment
def _segment_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
    """(problem at theta_prev, theta): a step of norm about 0.5 sqrt(n) from theta_prev."""
    pr = random_problem(rng, max_states=4, min_horizon=2, finite_gammas=(0.9, 0.5))
    pr = Problem(pr.mdp, pr.policy, pr.theta / 2)
    return pr, pr.theta + 0.5 * rng.standard_normal(pr.policy.n_params)


def _gl(nodes: int = GL_NODES) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(nodes)
    return (x + 1) / 2, w / 2


def _integrated_hvp(inst, nodes: int = GL_NODES) -> np.ndarray:
    pr, theta = inst
    delta = theta - pr.theta
    a, w = _gl(nodes)
    return sum(wa * exact.hessian_vector_product(pr.mdp, pr.policy, pr.theta + ai * delta, delta)
               for ai, wa in zip(a, w))


def _gradient_difference(inst) -> np.ndarray:
    pr, theta = inst
    return _ref_gradient(pr, theta) - _ref_gradient(pr, pr.theta)


def _hvp_at(inst, a: float) -> np.ndarray:
    pr, theta = inst
    delta = theta - pr.theta
    return exact.hessian_vector_product(pr.mdp, pr.policy, pr.theta + a * delta, delta)


GL_REASON = (
    "Gauss-Legendre with 16 nodes on [0, 1] of an integrand analytic in a (a rational function of "
    "exponentials of theta_a), steps of norm about 0.5 sqrt(n): 16 and 32 nodes differed by at most "
    "4.3e-13 of max(1, |difference|) on 200 instances, and the residual was at most 1.2e-14 (5.4e-15 "
    "with enumerated estimators); the rest is rounding of the closed forms and of the dense solves"
)

identity(
    id="hessian.segment_integral",
    statement=r"\int_0^1 \nabla^2 J(\theta_a)\,(\theta_t - \theta_{t-1})\,da = \nabla J(\theta_t) - \nabla J(\theta_{t-1}),"
    r"\quad \theta_a = a\theta_t + (1-a)\theta_{t-1}",
    source=SHEN_SOURCE + " (the identity behind the Hessian-aided gradient difference); the fundamental "
    "theorem of calculus along the segment",
    reference="the difference of two policy gradients rho pi psi A written out with dense LU solves "
    "(finite horizon: recursions), no Hessian",
    instance=_segment_instance,
    computed=_integrated_hvp,
    expected=_gradient_difference,
    tolerance=IDENTITY_TOL,
    tolerance_reason=GL_REASON,
    mutants={
        "the Hessian at the current theta (a = 1) instead of a ~ U[0, 1]": lambda inst: _hvp_at(inst, 1.0),
        "the Hessian at the segment's midpoint (a = 1/2)": lambda inst: _hvp_at(inst, 0.5),
    },
    default_instances=3,
)


# ----------------------------------------------------------------------------- estimators' exact means
def _small_instance(rng: np.random.Generator) -> Problem:
    """Finite horizon 2..3 with up to 3 states: every trajectory is enumerated (at most 2187)."""
    return random_problem(rng, discounted=False, max_states=3, max_horizon=3, min_horizon=2,
                          finite_gammas=(0.9, 0.5))


def _enumerated(pr: Problem, theta: np.ndarray | None = None):
    from ..estimators import enumerate_trajectories

    th = pr.theta if theta is None else theta
    return enumerate_trajectories(pr.mdp, pr.policy.probs(th))


def _terms(pr: Problem):
    from ..estimators._second_order import _padded_terms

    trajs, p = _enumerated(pr)
    psi, w, F, states, mask = _padded_terms(trajs, pr.policy, pr.theta)
    to_go = np.cumsum(w[:, ::-1], axis=1)[:, ::-1]
    return trajs, p, psi, w, F, states, mask, to_go


def _reinforce_mean(pr: Problem, outer_only: bool = False) -> np.ndarray:
    from ..estimators import exact_mean, hessian_reinforce

    trajs, p = _enumerated(pr)
    if not outer_only:
        return exact_mean(hessian_reinforce(trajs, pr.policy, pr.theta).samples, p)
    _, _, psi, w, _, _, _, _ = _terms(pr)
    u = psi.sum(axis=1)
    return exact_mean(np.einsum("n,ni,nj->nij", w.sum(axis=1), u, u), p)


identity(
    id="hessian.lr_total_return_unbiased",
    statement=r"E\Big[R\Big(\Big(\sum_t\psi_t\Big)\Big(\sum_t\psi_t\Big)^\top + \sum_t\nabla^2\log\pi(a_t|s_t)\Big)\Big] = \nabla^2 J,"
    r"\quad R = \sum_t\gamma^t r_t",
    source="the likelihood-ratio identity grad^2 E[R] = E[R (grad log p grad log p^T + grad^2 log p)]; " + SOURCE,
    reference="the complex-step Hessian of hessian.complex_step (a dense reference gradient, complex step)",
    instance=_small_instance,
    computed=_reinforce_mean,
    expected=_ref_hessian,
    tolerance=IDENTITY_TOL,
    tolerance_reason=ENUM_REASON,
    mutants={"the curvature term sum grad^2 log pi dropped (score outer product only)": lambda pr: _reinforce_mean(pr, True)},
    default_instances=2,
)


def _baseline(pr: Problem) -> np.ndarray:
    """A time-indexed baseline b_t(s) of the returns' scale, drawn from the instance (deterministic in it)."""
    rng = np.random.default_rng(zlib.crc32(pr.theta.tobytes()))
    return (1.0 + np.abs(pr.mdp.r).max()) * rng.standard_normal((pr.mdp.horizon, pr.mdp.n_states))


def _loaded_dice_mean(pr: Problem, lam: float = 1.0) -> np.ndarray:
    from ..estimators import exact_mean, hessian_loaded_dice

    trajs, p = _enumerated(pr)
    return exact_mean(hessian_loaded_dice(trajs, pr.policy, pr.theta, _baseline(pr), lam=lam).samples, p)


def _baseline_in_dice_rewards(pr: Problem) -> np.ndarray:
    r"""The mistake: the baseline subtracted inside DiCE's cumulative objective,
    :math:`\sum_t\boxdot(a_{\le t})\,d^t(r_t - b_t(s_t))`, not on Loaded DiCE's increments."""
    from ..estimators import exact_mean

    trajs, p, psi, w, F, states, mask, _ = _terms(pr)
    T = w.shape[1]
    b = _baseline(pr)[np.arange(T)[None, :], states]
    c = (w - trajs.discounts()[None, :] * b) * mask
    U = np.cumsum(psi, axis=1)
    curv = np.einsum("nt,ntij->nij", c, np.cumsum(F[states] * mask[:, :, None, None], axis=1))
    return exact_mean(np.einsum("nt,nti,ntj->nij", c, U, U) - curv, p)


identity(
    id="hessian.loaded_dice_unbiased",
    statement=r"E\Big[\sum_t (A_t - A_{t+1})\Big(U_tU_t^\top - \sum_{u\le t}F_{s_u}\Big)\Big] = \nabla^2 J,"
    r"\quad A_t = \sum_{t'\ge t}\gamma^{t'}r_{t'} - \gamma^t b_t(s_t)\ \text{(any fixed baseline)}",
    source=DICE_SOURCE,
    reference="the complex-step Hessian of hessian.complex_step (a dense reference gradient, complex step)",
    instance=_small_instance,
    computed=_loaded_dice_mean,
    expected=_ref_hessian,
    tolerance=IDENTITY_TOL,
    tolerance_reason=ENUM_REASON,
    mutants={
        "the baseline subtracted inside DiCE's cumulative objective": _baseline_in_dice_rewards,
        "dependencies discounted (lambda = 0.5) taken as unbiased": lambda pr: _loaded_dice_mean(pr, 0.5),
    },
    default_instances=2,
)


def _shen_mean(pr: Problem, total_curvature: bool = False) -> np.ndarray:
    from ..estimators import exact_mean, hessian_shen

    if not total_curvature:
        trajs, p = _enumerated(pr)
        return exact_mean(hessian_shen(trajs, pr.policy, pr.theta).samples, p)
    _, p, psi, w, F, states, mask, to_go = _terms(pr)
    g_phi = np.einsum("nt,nti->ni", to_go, psi)
    visits = np.einsum("nt,ntij->nij", mask, F[states])
    return exact_mean(np.einsum("ni,nj->nij", g_phi, psi.sum(axis=1)) - w.sum(axis=1)[:, None, None] * visits, p)


identity(
    id="hessian.shen_unbiased",
    statement=r"E\big[\nabla\Phi\,\nabla\log p(\tau)^\top + \nabla^2\Phi\big] = \nabla^2 J,"
    r"\quad \Phi(\theta;\tau) = \sum_h\Big(\sum_{i\ge h}\gamma^i r_i\Big)\log\pi_\theta(a_h|s_h)",
    source=SHEN_SOURCE,
    reference="the complex-step Hessian of hessian.complex_step (a dense reference gradient, complex step)",
    instance=_small_instance,
    computed=_shen_mean,
    expected=_ref_hessian,
    tolerance=IDENTITY_TOL,
    tolerance_reason=ENUM_REASON,
    mutants={"grad^2 Phi weighted by the total return R instead of the reward-to-go": lambda pr: _shen_mean(pr, True)},
    default_instances=2,
)


def _aided_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
    pr = _small_instance(rng)
    pr = Problem(pr.mdp, pr.policy, pr.theta / 2)
    return pr, pr.theta + 0.5 * rng.standard_normal(pr.policy.n_params)


def _aided_mean(inst, fixed_a: float | None = None) -> np.ndarray:
    r""":math:`E_{a\sim U[0,1]}E_{\tau\sim\theta_a}[\tilde H(\theta_a;\tau)\Delta\theta]` by Gauss–Legendre in a and enumeration in τ."""
    from ..estimators import exact_mean, hessian_aided_difference

    pr, theta = inst
    nodes = ([fixed_a], [1.0]) if fixed_a is not None else _gl()
    total = 0.0
    for a, wa in zip(*nodes):
        trajs, p = _enumerated(pr, pr.theta + a * (theta - pr.theta))
        total = total + wa * exact_mean(hessian_aided_difference(trajs, pr.policy, pr.theta, theta, a).samples, p)
    return total


identity(
    id="hessian.aided_difference_unbiased",
    statement=r"E_{a\sim U[0,1]}E_{\tau\sim\theta_a}\big[\tilde H(\theta_a;\tau)(\theta_t-\theta_{t-1})\big] = \nabla J(\theta_t) - \nabla J(\theta_{t-1})",
    source=SHEN_SOURCE,
    reference="the difference of two policy gradients rho pi psi A written out with dense recursions, no Hessian",
    instance=_aided_instance,
    computed=_aided_mean,
    expected=_gradient_difference,
    tolerance=IDENTITY_TOL,
    tolerance_reason="exact expectations in tau (enumeration) and " + GL_REASON,
    mutants={"the Hessian estimate at the current theta (a = 1) instead of a ~ U[0, 1]": lambda inst: _aided_mean(inst, 1.0)},
    default_instances=2,
)
