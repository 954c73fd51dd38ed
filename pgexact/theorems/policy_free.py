r"""Theorems on the derivatives in the policy matrix (:mod:`pgexact.exact.policy_free`), the discounted
visitation, and the Fisher-vector products of any parametrization.

Every reference is a complex-step directional derivative of values written from the model's data
(:mod:`pgexact.theorems._reference`: a dense LU solve, or the backward recursion and forward marginals
for a finite horizon), evaluated at :math:`\pi + ih\Delta` for a random direction Δ of the (S, A)
matrix — the closed forms extend off the simplex by the same formulas, so any Δ is allowed. A
vector-Jacobian product u ↦ Jᵀu is checked through its defining property
:math:`\langle J^\top\bar u, \Delta\rangle = \langle\bar u, J\Delta\rangle`, with random cotangents
(never 1, never all-equal: a VJP that ignored its cotangent's entries would pass those).

Instances: random dense MDPs with 2..5 states and 2..4 actions, rewards N(0, 1), discounted (γ in
[0.2, 0.95]) or finite horizon 2..5 with γ in {0.5, 0.9}; π a random point of the simplex (rows
Dirichlet(1)), or a softmax policy for the Fisher products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from .. import exact
from ..exact import policy_free
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from . import _reference as ref
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []

H_STEP = 1e-30  # complex step: no truncation at this size, no cancellation

COMPLEX_REASON = (
    "complex-step derivatives (h = 1e-30) have no truncation or cancellation error; both sides are sums of "
    "O(S A) products of values of size <= 3/(1-gamma) <= 60 from solves of condition <= 39: measured residuals "
    "<= 1.3e-14 (seed 0) and 4.6e-14 (seed 1) over 200 instances each, so 1e-11 leaves a margin of ~200 and rejects "
    "a relative mistake of 1e-9"
)


@dataclass(frozen=True)
class PiProblem:
    """An MDP, a policy matrix, a direction Δ and random cotangents of V, Q, A and d."""

    mdp: FiniteMDP
    pi: np.ndarray
    delta: np.ndarray
    V_bar: np.ndarray
    Q_bar: np.ndarray
    A_bar: np.ndarray
    d_bar: np.ndarray


def _pi_problem(rng: np.random.Generator) -> PiProblem:
    S, A = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    if rng.integers(2):
        mdp = random_mdp(S, A, gamma=float(rng.uniform(0.2, 0.95)), seed=rng)
        vshape = (S,)
    else:
        H = int(rng.integers(2, 6))
        mdp = random_mdp(S, A, gamma=float(rng.choice([0.5, 0.9])), horizon=H, seed=rng)
        vshape = (H, S)
    pi = rng.dirichlet(np.ones(A), size=S)
    return PiProblem(mdp, pi, rng.standard_normal((S, A)), rng.standard_normal(vshape),
                     rng.standard_normal(vshape + (A,)), rng.standard_normal(vshape + (A,)), rng.standard_normal(S))


def _ref_occupancy(mdp: FiniteMDP, pi: np.ndarray) -> np.ndarray:
    """Normalized occupancy (complex-safe): an LU solve, or the discounted average of forward marginals."""
    if mdp.horizon is None:
        return ref.occupancy(mdp, pi)
    w = mdp.gamma ** np.arange(mdp.horizon)
    return w @ ref.marginals(mdp, pi, mdp.horizon) / w.sum()


def _ref_visitation(mdp: FiniteMDP, pi: np.ndarray, discount: bool = True) -> np.ndarray:
    r""":math:`\sum_t\gamma^t p_t` by forward marginals (finite horizon) or :math:`d/(1-\gamma)` (discounted);
    ``discount=False`` sums the marginals without :math:`\gamma^t` (the control)."""
    if mdp.horizon is None:
        return ref.occupancy(mdp, pi) / (1.0 - mdp.gamma)
    w = mdp.gamma ** np.arange(mdp.horizon) if discount else np.ones(mdp.horizon)
    return w @ ref.marginals(mdp, pi, mdp.horizon)


def _directional(pr: PiProblem) -> tuple[float, ...]:
    """Complex-step derivatives along Δ of <V̄,V> + <Q̄,Q>, <Ā,A>, <d̄,d> and J (twice: for pi_gradient and for
    value_and_pi_gradient), and J itself."""
    z = pr.pi + 1j * H_STEP * pr.delta
    vals = ref.values(pr.mdp, z)
    d = _ref_occupancy(pr.mdp, z)
    vq = np.sum(pr.V_bar * vals.V) + np.sum(pr.Q_bar * vals.Q)
    dJ = float(np.imag(vals.J)) / H_STEP
    return (float(np.imag(vq)) / H_STEP, float(np.imag(np.sum(pr.A_bar * vals.A))) / H_STEP,
            float(np.imag(pr.d_bar @ d)) / H_STEP, dJ, dJ, float(np.real(ref.values(pr.mdp, pr.pi).J)))


def _vjps(pr: PiProblem, *, occupancy_gamma: bool = True) -> tuple[float, ...]:
    m, pi, D = pr.mdp, pr.pi, pr.delta
    J, grad, _ = exact.value_and_pi_gradient(m, pi)
    occ = exact.occupancy_vjp(m, pi, pr.d_bar)
    if not occupancy_gamma:  # the mistake: the factor gamma of d (gamma d(s) (P x)(s, a)) dropped
        occ = occ / m.gamma
    return (float(np.sum(exact.value_vjp(m, pi, pr.V_bar, pr.Q_bar) * D)),
            float(np.sum(exact.advantage_vjp(m, pi, pr.A_bar) * D)),
            float(np.sum(occ * D)), float(np.sum(exact.pi_gradient(m, pi) * D)), float(np.sum(grad * D)), float(J))


def _vjp_weights_without_adjoint(pr: PiProblem) -> tuple[float, ...]:
    """The mistake: <V̄,V> + <Q̄,Q> differentiated as if V̄ weighted only J (adjoint λ = ρ_π, cotangents ignored)."""
    m, pi, D = pr.mdp, pr.pi, pr.delta
    out = list(_vjps(pr))
    out[0] = float(np.sum(exact.pi_gradient(m, pi) * D))
    return tuple(out)


identity(
    id="policy_free.vjp",
    statement=r"\Big\langle \frac{\partial(\langle\bar V,V\rangle+\langle\bar Q,Q\rangle)}{\partial\pi}, \Delta\Big\rangle "
    r"= \frac{d}{d\epsilon}\big(\langle\bar V,V_{\pi+\epsilon\Delta}\rangle + \langle\bar Q,Q_{\pi+\epsilon\Delta}\rangle\big),"
    r"\ \text{likewise for } A,\ d_\pi,\ J;\quad \frac{\partial J}{\partial\pi(a|s)} = \rho_\pi(s)Q^\pi(s,a)",
    source="Sutton et al. 2000, Theorem 1 (in pi-coordinates); Agarwal et al. 2021, Lemma 3.2 (direct "
    "parametrization); reverse-mode differentiation of the Bellman equation (pgexact.exact.policy_free)",
    reference="complex-step derivatives along a random direction Delta of <V_bar, V> + <Q_bar, Q>, <A_bar, A>, "
    "<d_bar, d> and J, each computed by a dense LU solve (finite horizon: backward recursion and forward marginals) "
    "at pi + i h Delta, with random normal cotangents",
    instance=_pi_problem,
    computed=_vjps,
    expected=_directional,
    tolerance=1e-11,
    tolerance_reason=COMPLEX_REASON,
    mutants={
        "value cotangents ignored (the adjoint of J used for every cotangent)": _vjp_weights_without_adjoint,
        "occupancy VJP without its factor gamma": lambda pr: _vjps(pr, occupancy_gamma=False),
    },
)


def _visitation_instance(rng: np.random.Generator) -> tuple[FiniteMDP, np.ndarray, FiniteMDP]:
    """Finite horizon 2..8 with γ in [0.3, 0.95] (γ < 1: where a dropped γ^t shows; the discounted case is
    occupancy.unrolled's). Half the time the library gets the same MDP with a sparse ``P`` (rows s·A + a), which
    takes its sparse path; the reference always reads the dense tensor."""
    S, A = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    dense = random_mdp(S, A, gamma=float(rng.uniform(0.3, 0.95)), horizon=int(rng.integers(2, 9)), seed=rng)
    mdp = dense
    if rng.integers(2):
        mdp = FiniteMDP(scipy.sparse.csr_array(np.asarray(dense.P).reshape(S * A, S)), dense.r, dense.mu0,
                        gamma=dense.gamma, horizon=dense.horizon)
    return mdp, rng.dirichlet(np.ones(A), size=S), dense


identity(
    id="visitation.discounted",
    statement=r"\rho_\pi(s) = \sum_{t<H}\gamma^t\Pr(s_t = s),\quad d_\pi = \rho_\pi / \textstyle\sum_{t<H}\gamma^t"
    r"\ \text{(dense and sparse } P)",
    source="Kakade & Langford 2002, sec. 2 (discounted state distribution); Sutton & Barto 2018, sec. 13.2 (on-policy "
    "distribution of an episodic task)",
    reference="forward propagation of the marginals p_{t+1} = p_t P_pi with the dense tensor, weighted by gamma^t",
    instance=_visitation_instance,
    computed=lambda inst: (exact.discounted_visitation(inst[0], inst[1]), exact.occupancy(inst[0], inst[1])),
    expected=lambda inst: (_ref_visitation(inst[2], inst[1]), _ref_occupancy(inst[2], inst[1])),
    tolerance=1e-13,
    tolerance_reason="sums of at most 8 products of probabilities: measured residuals <= 5.9e-16 over 200 instances "
    "(dense and sparse), a margin of ~170",
    mutants={"gamma^t dropped from the finite-horizon visitation": lambda inst: (
        _ref_visitation(inst[2], inst[1], discount=False), exact.occupancy(inst[0], inst[1]))},
)


# ----------------------------------------------------------------------------- Fisher-vector products
@dataclass(frozen=True)
class FisherProblem:
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray
    v: np.ndarray


def _fisher_problem(rng: np.random.Generator) -> FisherProblem:
    S, A = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    mdp = random_mdp(S, A, gamma=float(rng.uniform(0.2, 0.95)), seed=rng)
    policy: SoftmaxPolicy = (LinearSoftmax(rng.standard_normal((S, A, int(rng.integers(1, 5)))))
                             if rng.integers(2) else TabularSoftmax(S, A))
    theta = rng.standard_normal(policy.n_params)
    return FisherProblem(mdp, policy, theta, rng.standard_normal(policy.n_params))


def _jacobian(pr: FisherProblem) -> np.ndarray:
    """∂π/∂θ by complex steps of the reference softmax, shape (S·A, n)."""
    jac = ref.complex_step_gradient(lambda X: ref.probs(pr.policy, X), pr.theta)  # (n, S, A)
    return jac.reshape(jac.shape[0], -1).T


def _fisher_products(pr: FisherProblem, weights_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    Jt = _jacobian(pr)
    pi = pr.policy.probs(pr.theta)
    S, A = pi.shape
    d = exact.occupancy(pr.mdp, pi) * weights_scale
    via_jvp = exact.fisher_vector_product_jvp(pr.mdp, pi, lambda v: (Jt @ v).reshape(S, A),
                                              lambda w: Jt.T @ w.reshape(-1), pr.v,
                                              state_weights=None if weights_scale == 1.0 else d)
    metric = Jt.T @ exact.fisher_pi_metric(pi, d, (Jt @ pr.v).reshape(S, A)).reshape(-1)
    g = exact.policy_gradient(pr.mdp, pr.policy, pr.theta)
    F = lambda x: exact.fisher_vector_product(pr.mdp, pr.policy, pr.theta, x) * weights_scale  # noqa: E731
    x = exact.minimum_norm_solve(F, g)
    J, grad = exact.value_and_gradient(pr.mdp, pr.policy, pr.theta)
    return F(pr.v), via_jvp, metric, (x, J, grad)


def _fisher_expected(pr: FisherProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    pi = ref.probs(pr.policy, pr.theta)
    F = ref.fisher(pr.policy, pr.theta, ref.occupancy(pr.mdp, pi))
    g = ref.complex_step_gradient(lambda X: ref.values(pr.mdp, ref.probs(pr.policy, X)).J, pr.theta)
    x = np.linalg.lstsq(F, g, rcond=1e-12)[0]
    Fv = F @ pr.v
    return Fv, Fv, Fv, (x, float(ref.values(pr.mdp, pi).J), g)


identity(
    id="fisher.vector_products",
    statement=r"Fv = J_\theta^\top\mathrm{diag}\big(d(s)/\pi(a|s)\big)J_\theta v = \sum_s d(s)\sum_a\pi\,\nabla\log\pi\,"
    r"\nabla\log\pi^\top v,\quad x = \lim_k \mathrm{CG}_k(F, \nabla J) = F^+\nabla J,\quad (J, \nabla J)",
    source="Kakade 2002, sec. 3 (Fisher information of the policy); Schulman et al. 2015, Appendix C (Fisher-vector "
    "products, conjugate gradient); Hestenes & Stiefel 1952 (CG from 0 stays in the range of F)",
    reference="the dense Fisher matrix built from the explicit score and the occupancy of a dense LU solve; the "
    "Jacobian of the softmax by complex steps; F^+ grad J by numpy.linalg.lstsq (SVD); J and grad J by a dense "
    "solve and complex steps",
    instance=_fisher_problem,
    computed=_fisher_products,
    expected=_fisher_expected,
    tolerance=1e-9,
    tolerance_reason="CG stops at a relative residual 1e-12 on a Fisher matrix whose nonzero eigenvalues reach ~1e-4 "
    "here, so its error is ~1e-12 cond: measured <= 7.8e-12 over 200 instances (a margin of ~130); the products "
    "themselves agree to ~1e-15",
    mutants={"Fisher weighted by the unnormalized visitation d/(1-gamma)": lambda pr: _fisher_products(
        pr, 1.0 / (1.0 - pr.mdp.gamma))},
)


def _sparse_discounted_instance(rng: np.random.Generator) -> tuple[FiniteMDP, np.ndarray, FiniteMDP]:
    """A discounted MDP (γ in [0.3, 0.95]) given to the library with a sparse ``P`` (its Krylov path); the
    reference reads the dense tensor."""
    S, A = int(rng.integers(2, 7)), int(rng.integers(2, 4))
    dense = random_mdp(S, A, gamma=float(rng.uniform(0.3, 0.95)), seed=rng)
    mdp = FiniteMDP(scipy.sparse.csr_array(np.asarray(dense.P).reshape(S * A, S)), dense.r, dense.mu0,
                    gamma=dense.gamma)
    return mdp, rng.dirichlet(np.ones(A), size=S), dense


def _sparse_library(inst: tuple[FiniteMDP, np.ndarray, FiniteMDP]) -> tuple[np.ndarray, ...]:
    mdp, pi, _ = inst
    ev = exact.evaluate(mdp, pi)
    return ev.V, ev.Q, exact.discounted_visitation(mdp, pi), exact.occupancy(mdp, pi)


def _sparse_reference(inst: tuple[FiniteMDP, np.ndarray, FiniteMDP]) -> tuple:
    _, pi, dense = inst
    vals = ref.values(dense, pi)
    d = ref.occupancy(dense, pi)
    return vals.V, vals.Q, d / (1.0 - dense.gamma), d


identity(
    id="evaluation.sparse_discounted",
    statement=r"V = (I-\gamma P_\pi)^{-1}r_\pi,\ Q = r + \gamma PV,\ \rho = \mu_0^\top(I-\gamma P_\pi)^{-1},\ "
    r"d = (1-\gamma)\rho \ \text{(sparse } P\text{: Krylov solves)}",
    source="Puterman 1994, Theorem 6.1.1 (policy evaluation); Kakade & Langford 2002, sec. 2 (occupancy); "
    "Saad 2003, Iterative Methods for Sparse Linear Systems, ch. 6 (GMRES, the Krylov path)",
    reference="dense LU solves written from the model's dense tensor (the library gets the same MDP with a sparse "
    "P and takes its Krylov path)",
    instance=_sparse_discounted_instance,
    computed=_sparse_library,
    expected=_sparse_reference,
    tolerance=1e-8,
    tolerance_reason="the Krylov solves stop at relative residual 1e-10 (DEFAULT_SPARSE_TOL); the error is at most "
    "the condition number (<= 39) times that: <= 4e-9 relative",
    mutants={"the discounted visitation normalized like the occupancy (rho = d)": lambda inst: (
        *_sparse_library(inst)[:2], _sparse_library(inst)[3], _sparse_library(inst)[3])},
)
