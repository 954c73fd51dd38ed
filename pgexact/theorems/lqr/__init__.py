r"""Theorems on LQR with linear(-Gaussian) policies.

Instances (:func:`random_problem`): n in 1..4 states, m in 1..3 inputs, A with standard normal
entries scaled to spectral radius U(0.5, 1.3) (often open-loop unstable), B standard normal,
Q = I + G Gᵀ/n, R = I + H Hᵀ/m, a cross cost N with entries N(0, 0.09/(nm)) on half of them,
Sigma0 = I, process noise 0.1 I (or none), policy noise 0.3 I (or none), gamma U(0.5, 0.95); the gain is K* + Δ with Δ shrunk until the closed loop has
:math:`\rho(\sqrt\gamma(A - BK)) \le 0.9` (or halfway between :math:`\rho(K^*)` and 1 in the
rare instances where K* itself has less margin), so all Lyapunov solves have condition number at most
:math:`\sim 1/(1-0.9^2) \approx 5` per unit of :math:`\|A_K\|`.

Derivative checks use the fourth-order central difference
:math:`[-f(2h) + 8f(h) - 8f(-h) + f(-2h)]/(12h)` with :math:`h = 10^{-4}`: truncation
:math:`h^4 |C^{(5)}|/30` and rounding :math:`\approx 1.5\,\epsilon\,C/h`; with the stability
margin 0.9 both are below :math:`10^{-9} C`, so residuals (relative, with an absolute floor of
:math:`10^{-3} C`) must be below ``1e-6`` — observed ~1e-10.

Every theorem compares the closed form of :mod:`pgexact.lqr` with a computation that shares only
the model's matrices: :func:`reference_cost` (the primal, state-covariance side by a Kronecker
solve or a forward recursion, where :mod:`pgexact.lqr` solves the dual :math:`P_K` side by
Bartels-Stewart), :func:`riccati_by_iteration` (the doubling algorithm instead of the Schur-based
DARE), central differences of those, Gauss-Hermite quadrature and exact symmetric-point cubature.
Each carries negative controls (a dropped γ, Σ0 for Σ_K, a missing factor 2, ...) that a test
requires to be rejected on at least 90% of instances. The inequalities of Fazel et al. (NPG rate,
gradient domination, smoothness) run on instances where they nearly bind (weak dynamics,
isotropic R and Σ0; :mod:`~pgexact.theorems.lqr.optimization`), so that their constants are
tested, not just their sign. Modules: :mod:`~pgexact.theorems.lqr.gradients`,
:mod:`~pgexact.theorems.lqr.optimization`, :mod:`~pgexact.theorems.lqr.soft`; and, registered
through ``THEOREM_MODULES``, :mod:`~pgexact.theorems.lqr.natural` (Fisher and natural gradient
against the score's outer product), :mod:`~pgexact.theorems.lqr.newton` (Hessian-vector product,
policy Hessian, Newton direction), :mod:`~pgexact.theorems.lqr.soft_step` (one soft improvement
step against its definition), :mod:`~pgexact.theorems.lqr.sampled` (statistical: the rollout's
law and the gradient estimators' means) and :mod:`~pgexact.theorems.lqr.values` (V, Q, grad_u Q, the
soft values and the optimal cost against primal-side costs from point masses, the finite-horizon
Riccati gains against the stacked quadratic program).
"""

from __future__ import annotations

from . import gradients, optimization, soft  # noqa: F401  (importing registers the theorems)
from ._common import (
    FD_REASON,
    FD_STEP,
    FD_TOL,
    LQRProblem,
    _J,
    central_difference,
    dpg_expectation,
    random_lqr,
    random_problem,
    reference_cost,
    riccati_by_iteration,
    score_expectation,
)
from ..registry import relative_error  # noqa: F401  (used by the tests with _J)

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`; the instance generators and references serve those
#: theorems and the tests.
__all__: list[str] = []
