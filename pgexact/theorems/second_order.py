r"""Theorems about exact second derivatives: the policy Hessian (in π and in θ), its symmetry, the
Hessian of the expected KL (the Fisher matrix) by Fisher-vector products, and the LQR cost Hessian.

References: complex-step derivatives of gradients written from the model's data alone
(:mod:`pgexact.theorems._reference`: dense LU solves, backward recursions, the explicit score), so
that one complex step gives a whole Hessian column to rounding; for LQR, Richardson differences of
the exact gradient :func:`pgexact.lqr.cost_gradient` (the evaluation's Stein solves, not the
derivative equations of the Hessian). Instances as in :mod:`pgexact.theorems.finite` and
:mod:`pgexact.theorems.lqr`.
"""

from __future__ import annotations

import numpy as np

from .. import exact
from ..exact.second_order import _SecondOrder
from ..lqr import hessian as lqr_hessian
from ..lqr.evaluation import evaluate as lqr_evaluate
from ..lqr.gradients import cost_gradient
from . import _reference as ref
from .finite import COMPLEX_REASON, IDENTITY_TOL, Problem, _discounted, _multi_step
from .lqr._common import _HORIZONS, LQRProblem, random_problem as random_lqr_problem
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []

SOURCE = (
    "Furmston, Lever & Barber 2016, 'Approximate Newton methods for policy search in Markov decision "
    "processes', JMLR 17(226) (policy Hessian); Shen et al. 2019, 'Hessian aided policy gradient', ICML"
)


# ----------------------------------------------------------------------------- reference gradients
def _ref_pi_gradient(pr: Problem, pi: np.ndarray) -> np.ndarray:
    r""":math:`\partial J/\partial\pi = \rho(s) Q(s, a)` (finite: :math:`\sum_t\gamma^t p_t Q_t`), complex-safe."""
    w = ref.state_weights(pr.mdp, pi)
    Q = ref.values(pr.mdp, pi).Q
    if pr.mdp.horizon is None:
        return w[:, None] * Q
    return np.einsum("ts,tsa->sa", w, Q)


def _ref_gradient(pr: Problem, theta: np.ndarray, *, frozen_weights=None, frozen_Q=None) -> np.ndarray:
    r""":math:`\nabla_\theta J = \sum w(s)\pi\psi A` written out (complex-safe); ``frozen_*``: the
    mistakes of the negative controls (a quantity held at its value at the instance's θ)."""
    pi = ref.probs(pr.policy, theta)
    psi = ref.score(pr.policy, theta)
    w = ref.state_weights(pr.mdp, pi) if frozen_weights is None else frozen_weights
    Q = ref.values(pr.mdp, pi).Q if frozen_Q is None else frozen_Q
    if pr.mdp.horizon is None:
        return np.einsum("s,sa,san,sa->n", w, pi, psi, Q)
    return np.einsum("ts,sa,san,tsa->n", w, pi, psi, Q)


def _cs_jacobian(f, x: np.ndarray) -> np.ndarray:
    h = ref.COMPLEX_STEP
    return np.stack([np.imag(f(x + 1j * h * e)) / h for e in np.eye(x.shape[0])], axis=1)


def _ref_hessian(pr: Problem, **frozen) -> np.ndarray:
    return _cs_jacobian(lambda t: _ref_gradient(pr, t, **frozen), pr.theta)


def _frozen(pr: Problem) -> tuple[np.ndarray, np.ndarray]:
    pi = ref.probs(pr.policy, pr.theta)
    return ref.state_weights(pr.mdp, pi), ref.values(pr.mdp, pi).Q


identity(
    id="hessian.complex_step",
    statement=r"\nabla^2_\theta J = J_\theta^\top \nabla^2_\pi J\, J_\theta + \sum_{s,a}\frac{\partial J}{\partial\pi(a|s)}\nabla^2_\theta\pi(a|s)",
    source=SOURCE + "; course notes 'Policy Gradient', section 'Policy Gradient Theorem' (differentiated once more)",
    reference="complex-step Jacobian (h = 1e-30) of the policy gradient rho pi psi A written out with a dense "
    "LU solve (finite horizon: backward recursion and forward marginals) and the explicit score",
    instance=_multi_step,
    computed=lambda pr: exact.hessian(pr.mdp, pr.policy, pr.theta),
    expected=_ref_hessian,
    tolerance=IDENTITY_TOL,
    tolerance_reason=COMPLEX_REASON,
    mutants={
        "occupancy held fixed (the delta d term dropped)": lambda pr: _ref_hessian(pr, frozen_weights=_frozen(pr)[0]),
        "action values held fixed (the delta Q term dropped)": lambda pr: _ref_hessian(pr, frozen_Q=_frozen(pr)[1]),
    },
)


# ----------------------------------------------------------------------------- pi-level product
def _pi_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray, np.ndarray]:
    pr = _multi_step(rng)
    pi = pr.policy.probs(pr.theta)
    return pr, pi, rng.standard_normal(pi.shape)


def _pi_hvp_expected(inst) -> np.ndarray:
    pr, pi, u = inst
    h = ref.COMPLEX_STEP
    return np.imag(_ref_pi_gradient(pr, pi + 1j * h * u)) / h


def _pi_hvp_value_term_only(inst) -> np.ndarray:
    pr, pi, u = inst
    return _SecondOrder(pr.mdp, pi, None).value_term(u[:, :, None])[:, :, 0]


identity(
    id="hessian.pi_vector_product",
    statement=r"\nabla^2_\pi J\,[u] = \delta\rho(s) Q(s,a) + \rho(s)\,\gamma (P\,\delta V)(s,a),\ "
    r"\delta V = (I-\gamma P_\pi)^{-1}\textstyle\sum_a u Q,\ \delta\rho = \gamma (I-\gamma P_\pi)^{-\top} \sum_{s,a}\rho u P(\cdot|s,a)",
    source=SOURCE + " (in the coordinates pi(a|s), free variables)",
    reference="complex-step derivative along u (any direction, off the simplex) of dJ/dpi = rho(s) Q(s, a) "
    "written out with a dense LU solve (finite horizon: recursions)",
    instance=_pi_instance,
    computed=lambda inst: exact.pi_hessian_vector_product(inst[0].mdp, inst[1], inst[2]),
    expected=_pi_hvp_expected,
    tolerance=IDENTITY_TOL,
    tolerance_reason=COMPLEX_REASON,
    mutants={"the visitation's derivative dropped (delta rho = 0)": _pi_hvp_value_term_only},
)


# ----------------------------------------------------------------------------- symmetry
def _sym_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray, np.ndarray]:
    pr = _multi_step(rng)
    return pr, rng.standard_normal(pr.policy.n_params), rng.standard_normal(pr.policy.n_params)


def _bilinear(inst, swap: bool, hvp=exact.hessian_vector_product) -> float:
    pr, u, v = inst
    a, b = (v, u) if swap else (u, v)
    return float(a @ hvp(pr.mdp, pr.policy, pr.theta, b))


def _hvp_without_visitation(mdp, policy, theta, v) -> np.ndarray:
    """The mistake: the chain rule applied to a pi-Hessian without the visitation's derivative."""
    pi = policy.probs(theta)
    so = _SecondOrder(mdp, pi, None)
    u = pi * policy.score_dot(theta, v)
    Hu = so.value_term(u[:, :, None])[:, :, 0]
    G = so.G
    bracket = u * (G - np.sum(pi * G, axis=1, keepdims=True)) - pi * np.sum(u * G, axis=1, keepdims=True)
    return policy.score_contract(theta, pi * Hu) + policy._logit_jacobian_t(bracket)


identity(
    id="hessian.symmetric",
    statement=r"u^\top(\nabla^2 J\, v) = v^\top(\nabla^2 J\, u)",
    source=SOURCE + "; Schwarz's theorem (J is a rational function of theta's softmax)",
    reference="the same bilinear form with the two directions swapped (the Hessian-vector product is not "
    "symmetric by construction: its pi-level terms rho dQ and d(rho) Q are not symmetric separately)",
    instance=_sym_instance,
    computed=lambda inst: _bilinear(inst, False),
    expected=lambda inst: _bilinear(inst, True),
    tolerance=IDENTITY_TOL,
    tolerance_reason=COMPLEX_REASON.split(";")[0],
    mutants={
        "the visitation's derivative dropped": lambda inst: _bilinear(inst, False, _hvp_without_visitation),
    },
)


# ----------------------------------------------------------------------------- KL Hessian = Fisher
def _kl_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
    pr = _discounted(rng, max_states=4)
    return pr, rng.standard_normal(pr.policy.n_params)


def _fvp_by_jvp(inst, *, centred: bool = True, weights_scale: float = 1.0) -> np.ndarray:
    """F v by the parametrization-free route (a JVP and a VJP of theta -> pi, as the adapters do)."""
    pr, v = inst
    pol, theta = pr.policy, pr.theta
    pi = pol.probs(theta)

    def jvp(x):
        return pi * pol.score_dot(theta, x) if centred else pi * pol._logit_jvp(x)

    def vjp(w):
        return pol.score_contract(theta, pi * w) if centred else pol._logit_jacobian_t(pi * w)

    d = exact.occupancy(pr.mdp, pi) * weights_scale
    return exact.fisher_vector_product_jvp(pr.mdp, pi, jvp, vjp, v, state_weights=d)


def _cs_kl_hessian_vector(inst) -> np.ndarray:
    r"""Complex step along v (in θ') of the gradient of :math:`E_d KL(\pi_\theta\|\pi_{\theta'})`,
    :math:`\sum_s d(s)\sum_a (\pi_{\theta'} - \pi_\theta)\nabla z`, at θ' = θ (written out)."""
    pr, v = inst
    pi = ref.probs(pr.policy, pr.theta)
    d = ref.occupancy(pr.mdp, pi)
    phi = ref.logit_features(pr.policy)
    h = ref.COMPLEX_STEP
    return np.imag(np.einsum("s,sa,san->n", d, ref.probs(pr.policy, pr.theta + 1j * h * v) - pi, phi)) / h


identity(
    id="hessian.kl_is_fisher_by_products",
    statement=r"\nabla^2_{\theta'} E_{s\sim d_\pi}KL(\pi_\theta(\cdot|s)\|\pi_{\theta'}(\cdot|s))\big|_{\theta'=\theta}\,v = F v "
    r"= J_\theta^\top \mathrm{diag}(d(s)/\pi(a|s))\, J_\theta v",
    source="Kakade 2002, sec. 3; Schulman et al. 2015, Appendix C; course notes 'Advanced Policy Gradients', section 'Natural Policy Gradient'",
    reference="complex-step derivative along v, at theta' = theta, of the KL's gradient in theta' written out "
    "from the logits, with the occupancy by a dense LU solve",
    instance=_kl_instance,
    computed=_fvp_by_jvp,
    expected=_cs_kl_hessian_vector,
    tolerance=IDENTITY_TOL,
    tolerance_reason=COMPLEX_REASON,
    mutants={
        "score not centred (JVP of the logits instead of pi)": lambda inst: _fvp_by_jvp(inst, centred=False),
        "weights d/(1-gamma) instead of d": lambda inst: _fvp_by_jvp(inst, weights_scale=1.0 / (1.0 - inst[0].mdp.gamma)),
    },
)


# ----------------------------------------------------------------------------- LQR
def _lqr_instance(rng: np.random.Generator) -> LQRProblem:
    return random_lqr_problem(rng, stochastic=True, horizon=_HORIZONS[int(rng.integers(len(_HORIZONS)))])


def _lqr_args(p: LQRProblem):
    return p.lqr, p.policy.gain(p.theta), p.policy.action_cov(p.theta)


def _lqr_scale(p: LQRProblem) -> float:
    lqr, K, Su = _lqr_args(p)
    return 1e-3 * abs(lqr_evaluate(lqr, K, Su).cost)


def _lqr_fd_hessian(p: LQRProblem) -> np.ndarray:
    """Richardson differences (h = 1e-4, 1e-4/2) of the exact cost gradient, one column per gain entry."""
    lqr, K, Su = _lqr_args(p)
    m, n = K.shape
    cols = []
    for E in np.eye(m * n).reshape(m * n, m, n):
        def d(h: float) -> np.ndarray:
            return (cost_gradient(lqr, K + h * E, Su) - cost_gradient(lqr, K - h * E, Su)) / (2 * h)
        cols.append(((4 * d(5e-5) - d(1e-4)) / 3).reshape(-1))
    return np.stack(cols, axis=1) / _lqr_scale(p)


def _lqr_hessian(p: LQRProblem, state_term: bool = True) -> np.ndarray:
    lqr, K, Su = _lqr_args(p)
    if state_term:
        return lqr_hessian.cost_hessian(lqr, K, Su) / _lqr_scale(p)
    ev = lqr_evaluate(lqr, K, Su)
    return lqr_hessian._hessian_blocks(ev, state_term=False)[0] / _lqr_scale(p)


def _lqr_gauss_newton(p: LQRProblem) -> np.ndarray:
    """The mistake: 2 (R + gamma B^T P B) (x) Sigma_K, the Gauss-Newton part alone (infinite horizon form)."""
    lqr, K, Su = _lqr_args(p)
    ev = lqr_evaluate(lqr, K, Su)
    P = ev.P if lqr.horizon is None else ev.P[0]
    return 2.0 * np.kron(lqr.R + lqr.gamma * lqr.B.T @ P @ lqr.B, ev.Sigma) / _lqr_scale(p)


identity(
    id="hessian.lqr_cost",
    statement=r"\nabla^2 C(K)[X] = 2[(R+\gamma B^\top P_K B)X - \gamma B^\top P'_K[X] A_K]\Sigma_K + 2E_K\Sigma'_K[X]",
    source="Bu, Mesbahi, Fazel & Mesbahi 2019, 'LQR through the lens of first order methods: discrete-time "
    "case', arXiv:1907.08921 (here with discount, noise and cross cost; derivation in pgexact.lqr.hessian)",
    reference="Richardson central differences (h = 1e-4 and 5e-5) of the exact cost gradient "
    "pgexact.lqr.cost_gradient (the evaluation's Lyapunov solves, not the derivative equations)",
    instance=_lqr_instance,
    computed=_lqr_hessian,
    expected=_lqr_fd_hessian,
    tolerance=1e-8,
    tolerance_reason="Richardson differences: truncation O(h^4 C^(5)) and rounding O(eps |grad C| / h) ~ 1e-12 "
    "of the Hessian's scale at stability margin 0.9 (at h = 1e-3 the truncation reached 1e-7 on a "
    "high-curvature instance, with the Hessian 6e5 times 1e-3 C); observed up to 2.4e-11 on 150 instances",
    mutants={
        "the state term 2 E_K Sigma'_K[X] dropped (exact only at K*)": lambda p: _lqr_hessian(p, state_term=False),
        "Gauss-Newton part alone (the P' term dropped)": _lqr_gauss_newton,
    },
)


# ----------------------------------------------------------------------------- LR Hessian estimators
def _lr_instance(rng: np.random.Generator) -> Problem:
    """Finite horizon 2..3 with up to 3 states: every trajectory is enumerated (at most 1728)."""
    from .finite import random_problem

    return random_problem(rng, discounted=False, max_states=3, max_horizon=3, min_horizon=2,
                          finite_gammas=(0.9, 0.5))


def _lr_mean(pr: Problem, outer_only: bool = False) -> np.ndarray:
    from ..estimators import enumerate_trajectories, exact_mean, hessian_reward_to_go
    from ..estimators._second_order import _padded_terms

    trajs, p = enumerate_trajectories(pr.mdp, pr.policy.probs(pr.theta))
    if not outer_only:
        return exact_mean(hessian_reward_to_go(trajs, pr.policy, pr.theta).samples, p)
    psi, w, _, _, _ = _padded_terms(trajs, pr.policy, pr.theta)
    U = np.cumsum(psi, axis=1)
    return exact_mean(np.einsum("nt,nti,ntj->nij", w, U, U), p)


identity(
    id="hessian.lr_estimator_unbiased",
    statement=r"E\Big[\sum_t \gamma^t r_t\Big(U_tU_t^\top + \sum_{u\le t}\nabla^2\log\pi(a_u|s_u)\Big)\Big] = \nabla^2 J,"
    r"\quad U_t = \sum_{u\le t}\nabla\log\pi(a_u|s_u)",
    source="Foerster et al. 2018, 'DiCE: the infinitely differentiable Monte Carlo estimator', ICML, sec. 4 "
    "(the second derivative of the DiCE objective, no baseline); the likelihood-ratio identity "
    "grad^2 E[R] = E[R (grad log p grad log p^T + grad^2 log p)]",
    reference="the complex-step Hessian of hessian.complex_step (a dense reference gradient, complex step)",
    instance=_lr_instance,
    computed=_lr_mean,
    expected=_ref_hessian,
    tolerance=IDENTITY_TOL,
    tolerance_reason="an exact expectation over every trajectory (enumeration): rounding only; " + COMPLEX_REASON,
    mutants={"the curvature term sum grad^2 log pi dropped (score outer products only)": lambda pr: _lr_mean(pr, True)},
)
