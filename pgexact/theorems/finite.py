r"""Theorems of the exact core on finite MDPs with softmax policies.

Every residual compares a closed form of :mod:`pgexact.exact` with a reference from
:mod:`pgexact.theorems._reference` (or with differences of a value computed by the library),
written from the model's data alone: complex-step derivatives of J, dense LU solves, Neumann
series, forward propagation of marginals, repeated squaring of the chain, least squares on the
dense Fisher matrix built from the explicit score. The theorems about a change of policy
(performance difference, surrogate, KL, Fisher, natural gradient) are in
:mod:`pgexact.theorems.finite_kl`.

Instances: random dense MDPs with 2..6 states and 2..4 actions, rewards N(0, 1), discount in
[0, 0.95] (some theorems need γ bounded away from 0, stated where used) or a horizon 1..5, and
parameters N(0, σ²) with σ in {0.5, 1, 3}. Identity residuals are relative errors with an
absolute floor of 1 (:func:`relative_error`); the quantities compared are O(1) to
O(1/(1-γ)^2) ≈ 400 here, computed by linear solves of condition number at most
:math:`(1+\gamma)/(1-\gamma) \le 39`. Each theorem's tolerance is about 100 times the largest
residual measured over 200 instances (stated in its ``tolerance_reason``), so that a relative
mistake of 100 times the tolerance is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import exact
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from . import _reference as ref
from .registry import identity, inequality

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`; the instance generators and references below serve
#: those theorems and the tests.
__all__: list[str] = []

#: A generic rounding tolerance for identities that do not state a measured one (this module's theorems state
#: theirs; pgexact.theorems.second_order uses this one).
IDENTITY_TOL = 1e-9
IDENTITY_REASON = (
    "floating-point rounding in O(S^3) linear algebra on systems of condition number "
    "<= (1+gamma)/(1-gamma) <= 39: observed residuals are ~1e-14"
)
COMPLEX_REASON = IDENTITY_REASON + "; the complex step (h = 1e-30) has no truncation or cancellation error"


@dataclass(frozen=True)
class Problem:
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray


def random_problem(
    rng: np.random.Generator,
    *,
    discounted: bool | None = None,
    linear: bool | None = None,
    max_states: int = 6,
    max_horizon: int = 5,
    min_horizon: int = 1,
    gamma_range: tuple[float, float] = (0.0, 0.95),
    finite_gammas: tuple[float, ...] = (1.0, 0.9),
) -> Problem:
    """A random (mdp, policy, theta) instance; tabular or linear softmax."""
    S = int(rng.integers(2, max_states + 1))
    A = int(rng.integers(2, 5))
    is_discounted = bool(rng.integers(2)) if discounted is None else discounted
    if is_discounted:
        mdp = random_mdp(S, A, gamma=float(rng.uniform(*gamma_range)), seed=rng)
    else:
        mdp = random_mdp(
            S, A, gamma=float(rng.choice(finite_gammas)), horizon=int(rng.integers(min_horizon, max_horizon + 1)), seed=rng
        )
    is_linear = bool(rng.integers(2)) if linear is None else linear
    if is_linear:
        policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, A, int(rng.integers(1, 5)))))
    else:
        policy = TabularSoftmax(S, A)
    theta = float(rng.choice([0.5, 1.0, 3.0])) * rng.standard_normal(policy.n_params)
    return Problem(mdp, policy, theta)


def _multi_step(rng: np.random.Generator) -> Problem:
    """Discounted, or finite horizon H >= 2 with γ in {0.9, 0.5} (at H = 1 the transition kernel plays no
    part, and at γ = 1 a dropped γ is invisible)."""
    return random_problem(rng, min_horizon=2, finite_gammas=(0.9, 0.5))


def _discounted(rng: np.random.Generator, **kw) -> Problem:
    """Discounted instances with γ in [0.2, 0.95]: mistakes in powers of γ or 1-γ are visible."""
    return random_problem(rng, discounted=True, gamma_range=(0.2, 0.95), **kw)


# ----------------------------------------------------------------------------- reference helpers
def _J(pr: Problem, pi: np.ndarray) -> np.ndarray:
    return ref.values(pr.mdp, pi).J


def cs_gradient(pr: Problem) -> np.ndarray:
    r"""Complex-step gradient of the reference J (dense LU or backward recursion), all coordinates."""
    return ref.complex_step_gradient(lambda X: _J(pr, ref.probs(pr.policy, X)), pr.theta)


def _score_sum(pr: Problem, weight: np.ndarray, *, centred: bool = True, discount: bool = True) -> np.ndarray:
    r""":math:`\sum_{(t),s,a} w_{(t)}(s)\pi(a|s)\psi(s,a)\,\text{weight}` with the reference weights and score.

    ``centred=False`` uses :math:`\nabla z` for the score; ``discount=False`` drops
    :math:`\gamma^t` (finite horizon) or the 1/(1-γ) normalization (discounted).
    """
    mdp, pi = pr.mdp, ref.probs(pr.policy, pr.theta)
    psi = ref.score(pr.policy, pr.theta) if centred else ref.logit_features(pr.policy)
    w = ref.state_weights(mdp, pi)
    if not discount:
        w = w * (1.0 - mdp.gamma) if mdp.horizon is None else ref.marginals(mdp, pi, mdp.horizon)
    if mdp.horizon is None:
        return np.einsum("s,sa,san,sa->n", w, pi, psi, weight)
    return np.einsum("ts,sa,san,tsa->n", w, pi, psi, np.broadcast_to(weight, (mdp.horizon,) + pi.shape))


def _ref_values(pr: Problem) -> ref.Values:
    return ref.values(pr.mdp, ref.probs(pr.policy, pr.theta))


def _forms(pr: Problem) -> exact.PolicyGradientForms:
    return exact.policy_gradient_forms(pr.mdp, pr.policy, pr.theta)


PG_STATEMENT = r"\nabla J(\theta) = \sum_s \rho_\pi(s) \sum_a \pi_\theta(a|s) \nabla\log\pi_\theta(a|s) A^\pi(s,a)"
PG_SOURCE = (
    "Sutton et al. 2000, Theorem 1 (policy gradient theorem); course notes 'Policy Gradient', "
    "section 'Policy Gradient Theorem'"
)
CS_REFERENCE = "complex-step derivative (h = 1e-30) of J computed by a dense LU solve (finite horizon: backward recursion) from P, r, mu0, gamma and the softmax probabilities"

identity(
    id="pg.bellman_derivative",
    statement=PG_STATEMENT + r" \;=\; \mu_0^\top (I-\gamma P_\pi)^{-1}(\partial r_\pi + \gamma\, \partial P_\pi V)",
    source=PG_SOURCE + "; differentiating V = r_pi + gamma P_pi V",
    reference=CS_REFERENCE,
    instance=_multi_step,
    computed=lambda pr: _forms(pr).bellman_derivative,
    expected=cs_gradient,
    tolerance=1e-12,
    tolerance_reason=COMPLEX_REASON
    + '; measured residuals <= 6.5e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~154 and rejects a relative mistake of 1e-10',
    mutants={"dropped the gamma dP_pi V term (only the reward's derivative)": lambda pr: _score_sum(pr, pr.mdp.r)},
)
identity(
    id="pg.q_form",
    statement=r"\nabla J = \sum_s \rho(s)\sum_a \pi(a|s) \nabla\log\pi(a|s)\, Q^\pi(s,a)",
    source=PG_SOURCE + "; course notes 'Policy Gradients', section 'Baselines and advantages'",
    reference=CS_REFERENCE,
    instance=random_problem,
    computed=lambda pr: _forms(pr).q_form,
    expected=cs_gradient,
    tolerance=1e-12,
    tolerance_reason=COMPLEX_REASON
    + '; measured residuals <= 8.9e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~113 and rejects a relative mistake of 1e-10',
    mutants={
        "score without its centring (grad z for grad log pi) against Q": lambda pr: _score_sum(
            pr, _ref_values(pr).Q, centred=False
        )
    },
)
identity(
    id="pg.occupancy_form",
    statement=r"\nabla J = \frac{1}{1-\gamma} E_{s\sim d_\pi, a\sim\pi}[\nabla\log\pi(a|s) Q(s,a)]",
    source="Kakade 2002, sec. 2; course notes 'Advanced Policy Gradients', section 'Policy Gradient is Just Policy Iteration'",
    reference=CS_REFERENCE,
    instance=_discounted,
    computed=lambda pr: _forms(pr).occupancy_form,
    expected=cs_gradient,
    tolerance=1e-11,
    tolerance_reason=COMPLEX_REASON
    + '; measured residuals <= 2.0e-14 over 200 instances (seed 1), so 1e-11 leaves a margin of ~507 and rejects a relative mistake of 1e-09',
    mutants={"d instead of d/(1-gamma)": lambda pr: _score_sum(pr, _ref_values(pr).Q, discount=False)},
)
identity(
    id="pg.reward_to_go_form",
    statement=r"\nabla J = E\left[\sum_t \gamma^t \nabla\log\pi(a_t|s_t) Q(s_t,a_t)\right]",
    source="Sutton & Barto 2018, sec. 13.3 (time-indexed form, marginals propagated forward)",
    reference=CS_REFERENCE,
    instance=random_problem,
    computed=lambda pr: _forms(pr).reward_to_go_form,
    expected=cs_gradient,
    tolerance=1e-11,
    tolerance_reason=COMPLEX_REASON + "; discounted tail truncated below 1e-16 relative"
    + '; measured residuals <= 1.3e-14 over 200 instances (seed 1), so 1e-11 leaves a margin of ~797 and rejects a relative mistake of 1e-09',
    mutants={
        "reward-to-go from t+1 (drops r_t)": lambda pr: _score_sum(pr, _ref_values(pr).Q - pr.mdp.r),
    },
)


# ----------------------------------------------------------------------------- enumeration
def _small_finite(rng: np.random.Generator) -> Problem:
    return random_problem(rng, discounted=False, max_states=3, max_horizon=4, min_horizon=2, finite_gammas=(0.9, 0.5))


def _sparse_copy(mdp: FiniteMDP) -> FiniteMDP:
    """The same model with P stored as a scipy.sparse (S*A, S) array (the enumeration's sparse branch)."""
    import scipy.sparse

    S, A = mdp.n_states, mdp.n_actions
    return FiniteMDP(scipy.sparse.csr_array(np.asarray(mdp.P).reshape(S * A, S)), mdp.r, mdp.mu0, mdp.gamma,
                     horizon=mdp.horizon)


def _enumeration(pr: Problem) -> tuple:
    """REINFORCE, reward-to-go and J by enumeration, with P dense and with the same P sparse."""
    out = ()
    for mdp in (pr.mdp, _sparse_copy(pr.mdp)):
        enum = exact.reinforce_by_enumeration(mdp, pr.policy, pr.theta)
        out += (enum.reinforce, enum.reward_to_go, enum.J)
    return out


identity(
    id="pg.reinforce_enumeration",
    statement=r"E_\tau\Big[R(\tau)\sum_t\nabla\log\pi(a_t|s_t)\Big] = E_\tau\Big[\sum_t \nabla\log\pi(a_t|s_t)\sum_{t'\ge t}\gamma^{t'} r_{t'}\Big] = \nabla J,\quad E_\tau[R(\tau)] = J",
    source="Williams 1992 (REINFORCE); course notes 'Policy Gradient', section 'Variance Reduction: Causality Trick and Reward-to-Go Estimation'",
    reference=CS_REFERENCE + "; J by the backward recursion",
    instance=_small_finite,
    computed=_enumeration,
    expected=lambda pr: (cs_gradient(pr), cs_gradient(pr), float(_ref_values(pr).J)) * 2,
    tolerance=1e-12,
    tolerance_reason="sums over at most (S A)^H <= 20736 trajectories: rounding only"
    + '; measured residuals <= 3.8e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~265 and rejects a relative mistake of 1e-10',
    mutants={
        "reward-to-go discounted from t (gamma^(t'-t)) instead of from 0": lambda pr: (
            _score_sum(pr, _ref_values(pr).Q, discount=False),
            _score_sum(pr, _ref_values(pr).Q, discount=False),
            _enumeration(pr)[2],
        ) * 2
    },
)


# ----------------------------------------------------------------------------- differences of J
def _direction(pr: Problem) -> np.ndarray:
    v = np.random.default_rng(0).standard_normal(pr.policy.n_params)
    return v / np.linalg.norm(v)


def _richardson_J(pr: Problem) -> float:
    """Richardson-extrapolated central difference of the reference J (dense LU solve or backward recursion,
    written from the model's data) along a fixed unit direction.

    With h = 1e-3 the extrapolated error is O(h^4) J^(5) ≈ 1e-12 and rounding is
    O(eps |J| / h) ≈ 1e-13 (J = O(1)-O(20)): well below the tolerance.
    """
    v = _direction(pr)

    def J(t: float) -> float:
        return float(np.real(_J(pr, ref.probs(pr.policy, pr.theta + t * v))))

    h = 1e-3
    d1 = (J(h) - J(-h)) / (2 * h)
    d2 = (J(h / 2) - J(-h / 2)) / h
    return (4 * d2 - d1) / 3


def _transposed_mdp(mdp: FiniteMDP) -> FiniteMDP:
    return FiniteMDP(ref.transposed(mdp.P), mdp.r, mdp.mu0, gamma=mdp.gamma, horizon=mdp.horizon)


identity(
    id="pg.central_difference",
    statement=r"v^\top\nabla J(\theta) = \lim_{h\to 0} \frac{J(\theta+hv)-J(\theta-hv)}{2h}",
    source="definition of the derivative; Richardson extrapolation of central differences",
    reference="Richardson-extrapolated central differences (h = 1e-3) of J computed by a dense LU solve (finite "
    "horizon: backward recursion) written from the model's data, not by pgexact.evaluate",
    instance=_multi_step,
    computed=lambda pr: exact.policy_gradient(pr.mdp, pr.policy, pr.theta) @ _direction(pr),
    expected=_richardson_J,
    tolerance=1e-9,
    tolerance_reason="O(h^4 J^(5)) truncation plus O(eps |J|/h) rounding with h = 1e-3: measured residuals <= 1.4e-11 "
    "over 200 instances (the truncation grows with the parameter scale 3), a margin of ~70",
    mutants={
        "transposed P (P[s', a, s])": lambda pr: exact.policy_gradient(_transposed_mdp(pr.mdp), pr.policy, pr.theta)
        @ _direction(pr)
    },
)


# ----------------------------------------------------------------------------- score
def _cs_score(pr: Problem) -> tuple[np.ndarray, np.ndarray]:
    jac = ref.complex_step_gradient(lambda X: ref.log_probs(pr.policy, X), pr.theta)  # (n, S, A)
    return np.moveaxis(jac, 0, -1), np.zeros((pr.policy.n_states, pr.policy.n_params))


def _library_score(pr: Problem) -> tuple[np.ndarray, np.ndarray]:
    sc = pr.policy.score(pr.theta)
    return sc, np.einsum("sa,sak->sk", ref.probs(pr.policy, pr.theta), sc)


identity(
    id="score.expected_zero",
    statement=r"\texttt{score}(\theta)[s,a] = \nabla_\theta\log\pi_\theta(a|s),\quad E_{a\sim\pi_\theta(\cdot|s)}[\nabla_\theta\log\pi_\theta(a|s)] = 0 \quad \forall s",
    source="course notes 'Policy Gradients', section 'Baselines and advantages'; Williams 1992",
    reference="complex-step derivative of log pi written out from the logits (z - log sum exp z); "
    "the expectation weighs the library's score with the reference probabilities",
    instance=random_problem,
    computed=_library_score,
    expected=_cs_score,
    tolerance=1e-12,
    tolerance_reason="sums of A <= 4 products of O(1) numbers and a complex step without cancellation: a few ulps",
    mutants={
        "score without its centring (grad z)": lambda pr: (
            ref.logit_features(pr.policy),
            np.einsum("sa,sak->sk", ref.probs(pr.policy, pr.theta), ref.logit_features(pr.policy)),
        )
    },
)


# ----------------------------------------------------------------------------- occupancy, marginals, stationarity
def _neumann_occupancy(pr: Problem) -> np.ndarray:
    mdp, pi = pr.mdp, ref.probs(pr.policy, pr.theta)
    T = int(np.ceil(np.log(1e-17 * (1 - mdp.gamma)) / np.log(mdp.gamma))) if mdp.gamma > 0 else 1
    return (1 - mdp.gamma) * (mdp.gamma ** np.arange(T)) @ ref.marginals(mdp, pi, T)


identity(
    id="occupancy.unrolled",
    statement=r"(1-\gamma)\mu_0^\top(I-\gamma P_\pi)^{-1} = (1-\gamma)\sum_{t\ge 0}\gamma^t p_t, \quad \sum_s d_\pi(s) = 1",
    source="Neumann series; Kakade & Langford 2002, sec. 2",
    reference="Neumann series (1-gamma) sum_t gamma^t mu0 P_pi^t by forward propagation, truncated where the tail is below 1e-17",
    instance=lambda rng: random_problem(rng, discounted=True),
    computed=lambda pr: exact.occupancy(pr.mdp, pr.policy.probs(pr.theta)),
    expected=_neumann_occupancy,
    tolerance=1e-12,
    tolerance_reason=IDENTITY_REASON + "; series truncated where the tail is below 1e-17"
    + '; measured residuals <= 1.8e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~563 and rejects a relative mistake of 1e-10',
    mutants={
        "transposed chain (P_pi d instead of d^T P_pi)": lambda pr: (1 - pr.mdp.gamma)
        * np.linalg.solve(
            np.eye(pr.mdp.n_states) - pr.mdp.gamma * ref.chain(pr.mdp, ref.probs(pr.policy, pr.theta))[0],
            np.asarray(pr.mdp.mu0),
        ),
    },
)


def _drift_instance(rng: np.random.Generator) -> tuple[tuple[Problem, np.ndarray], tuple[Problem, np.ndarray]]:
    """A random MDP, and an MDP whose actions move deterministically to distinct states, where the bound binds at
    t = 1 when the policy change has the same TV in every state; both checked together. Policy changes are small
    (logit shifts of size 0.05..0.3), where a KL (about twice the squared TV) is smaller than the TV."""
    pr = random_problem(rng, discounted=False, max_horizon=5)
    return (pr, pr.theta + float(rng.choice([0.05, 0.1, 0.3])) * rng.standard_normal(pr.policy.n_params)), _drift_binding(rng)


def _drift_binding(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
    S = int(rng.integers(3, 7))
    A = 2
    P = np.zeros((S, A, S))
    targets = np.stack([rng.permutation(S) for _ in range(A)], axis=1)  # (S, A)
    targets[:, 1] = (targets[:, 0] + 1 + rng.integers(0, S - 1, size=S)) % S  # distinct from action 0
    P[np.arange(S)[:, None], np.arange(A)[None, :], targets] = 1.0
    mdp = FiniteMDP(P, rng.standard_normal((S, A)), np.eye(S)[int(rng.integers(S))], gamma=1.0, horizon=5)
    pol = TabularSoftmax(S, A)
    theta = np.zeros(S * A)
    shift = np.zeros((S, A))
    shift[:, 0] = float(rng.choice([0.05, 0.1, 0.3]))
    return Problem(mdp, pol, theta), shift.reshape(-1)


def _drift_lhs(inst: tuple[Problem, np.ndarray]) -> np.ndarray:
    pr, theta_new = inst
    T = 10
    p = exact.state_marginals(pr.mdp, pr.policy.probs(pr.theta), T)
    p_new = exact.state_marginals(pr.mdp, pr.policy.probs(theta_new), T)
    return np.abs(p_new - p).sum(axis=1)


def _drift_rhs(inst: tuple[Problem, np.ndarray], offset: int = 0, kl: bool = False) -> np.ndarray:
    """2 eps t (+ 1e-12 for rounding); ``kl``: eps = max_s KL(pi_theta' || pi_theta) in place of the TV (control)."""
    pr, theta_new = inst
    if kl:
        eps = float(np.max(ref.kl_per_state(ref.log_probs(pr.policy, theta_new), ref.log_probs(pr.policy, pr.theta))))
    else:
        eps = float(np.max(0.5 * np.abs(ref.probs(pr.policy, theta_new) - ref.probs(pr.policy, pr.theta)).sum(axis=1)))
    return 2 * eps * (np.arange(10) - offset) + 1e-12


def _drift_pair(side, **kw):
    return lambda pair: np.concatenate([side(inst, **kw) for inst in pair])


inequality(
    id="marginals.drift_bound",
    statement=r"\sum_s|p_{\theta'}(s_t=s)-p_\theta(s_t=s)| \le 2\epsilon t,\quad \epsilon=\max_s D_{TV}(\pi_{\theta'}(\cdot|s),\pi_\theta(\cdot|s))",
    source="course notes 'Advanced Policy Gradients', section 'Bounding the Error' (coupling argument, with TV not KL); Schulman et al. 2015, Lemma 3",
    reference="total variation written out from the two probability matrices; marginals from pgexact.state_marginals",
    instance=_drift_instance,
    lhs=_drift_pair(_drift_lhs),
    rhs=_drift_pair(_drift_rhs),
    tolerance=1e-12,
    tolerance_reason="inequality: the right side carries 1e-12 for the rounding of sums of S <= 6 probabilities",
    mutants={
        "off by one in time: 2 eps (t - 1)": (None, _drift_pair(_drift_rhs, offset=1)),
        "eps = max_s KL(pi' || pi) in place of the TV distance": (None, _drift_pair(_drift_rhs, kl=True)),
    },
)


def _squared_chain(pr: Problem) -> np.ndarray:
    """A row of P_π^(2^60) by repeated squaring (rows renormalized against drift)."""
    M, _ = ref.chain(pr.mdp, ref.probs(pr.policy, pr.theta))
    return ref.stochastic_power(M)[0]


identity(
    id="markov.stationary",
    statement=r"\nu P_\pi = \nu,\quad \textstyle\sum_s \nu(s) = 1",
    source="Levin, Peres & Wilmer, Markov Chains and Mixing Times, sec. 1.5 (convergence theorem, 4.9)",
    reference="a row of P_pi^(2^60) by repeated squaring (power iteration), not a linear solve",
    instance=lambda rng: random_problem(rng, discounted=True),
    computed=lambda pr: exact.stationary_distribution(pr.mdp, pr.policy.probs(pr.theta)),
    expected=_squared_chain,
    tolerance=1e-13,
    tolerance_reason="60 squarings of a dense random stochastic matrix: rounding grows linearly, ~60 * S * eps"
    + '; measured residuals <= 3.6e-16 over 200 instances (seed 1), so 1e-13 leaves a margin of ~277 and rejects a relative mistake of 1e-11',
    mutants={
        "right eigenvector (P_pi nu = nu, uniform)": lambda pr: np.full(pr.mdp.n_states, 1.0 / pr.mdp.n_states),
        "discounted occupancy d_pi called stationary": lambda pr: ref.occupancy(pr.mdp, ref.probs(pr.policy, pr.theta)),
    },
)


# ----------------------------------------------------------------------------- Bellman evaluation
def _series_values(pr: Problem, P: np.ndarray | None = None, gamma_in_q: bool = True) -> tuple:
    r"""V, Q, A, J and the state distribution by series, not by a solve or a backward recursion.

    Discounted: :math:`V = \sum_{t<2^{12}} (\gamma P_\pi)^t r_\pi = \prod_{j<12}(I + (\gamma P_\pi)^{2^j}) r_\pi`
    (tail :math:`\gamma^{4096} \le 10^{-91}`), and the occupancy d by the same product applied to
    :math:`(1-\gamma)\mu_0`. Finite horizon: :math:`V_t = \sum_{k=0}^{H-1-t} \gamma^k P_\pi^k r_\pi` by powers
    of :math:`P_\pi`, and the marginals :math:`p_t = \mu_0 P_\pi^t`. ``P`` (optional) replaces the
    transition tensor in :math:`Q = r + \gamma P V`; ``gamma_in_q=False`` drops its γ (controls).
    """
    mdp, pi = pr.mdp, ref.probs(pr.policy, pr.theta)
    P_pi, r_pi = ref.chain(mdp, pi)
    g = mdp.gamma
    g_q = g if gamma_in_q else 1.0
    P_q = np.asarray(mdp.P) if P is None else P
    if mdp.horizon is None:
        V = r_pi.copy()
        d = (1.0 - g) * np.asarray(mdp.mu0, dtype=float)
        M = g * P_pi
        for _ in range(12):
            V = V + M @ V
            d = d + d @ M
            M = M @ M
        Q = mdp.r + g_q * np.einsum("sat,t->sa", P_q, V)
        return V, Q, Q - V[:, None], float(mdp.mu0 @ V), d
    H = mdp.horizon
    terms = [r_pi]
    p = [np.asarray(mdp.mu0, dtype=float)]
    for _ in range(H - 1):
        terms.append(g * P_pi @ terms[-1])
        p.append(p[-1] @ P_pi)
    csum = np.cumsum(terms, axis=0)  # csum[k] = sum_{j<=k} gamma^j P^j r
    V = np.stack([csum[H - 1 - t] for t in range(H)])
    V_next = np.vstack([V[1:], np.zeros((1, mdp.n_states))])
    Q = mdp.r[None] + g_q * np.einsum("sat,ht->hsa", P_q, V_next)
    return V, Q, Q - V[:, :, None], float(mdp.mu0 @ V[0]), np.stack(p)


def _library_values(pr: Problem) -> tuple:
    ev = exact.evaluate(pr.mdp, pr.policy.probs(pr.theta))
    return ev.V, ev.Q, ev.A, ev.J, ev.d if pr.mdp.horizon is None else ev.p


def _values_mutant(*, transposed: bool = False, gamma_in_q: bool = True):
    def mutant(pr: Problem) -> tuple:
        V, _, _, J, dist = _library_values(pr)
        Q = _series_values(pr, P=ref.transposed(pr.mdp.P) if transposed else None, gamma_in_q=gamma_in_q)[1]
        return V, Q, Q - V[..., None], J, dist

    return mutant


identity(
    id="bellman.evaluation",
    statement=r"V^\pi = \sum_t \gamma^t P_\pi^t r_\pi,\ Q = r + \gamma P V,\ A = Q - V,\ J = \mu_0^\top V "
    r"\text{ (finite horizon: } V_t = \textstyle\sum_{k<H-t}\gamma^k P_\pi^k r_\pi,\ Q_t = r + \gamma P V_{t+1})",
    source="Sutton & Barto 2018, eq. 3.14; Puterman 1994, Theorem 6.1.1 (Neumann series)",
    reference="Neumann series by repeated squaring (discounted) or sums of powers of P_pi (finite horizon), "
    "never a solve or a backward recursion; checks V, Q, A, J and the occupancy d (finite horizon: marginals p_t)",
    instance=_multi_step,
    computed=_library_values,
    expected=_series_values,
    tolerance=1e-12,
    tolerance_reason=IDENTITY_REASON + "; the squared series has tail gamma^4096 < 1e-91"
    + '; measured residuals <= 2.1e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~475 and rejects a relative mistake of 1e-10',
    mutants={
        "Q = r + gamma P^T V (s and s' swapped in P)": _values_mutant(transposed=True),
        "Q = r + P V (dropped gamma)": _values_mutant(gamma_in_q=False),
    },
)
