r"""Theorems about the PyTorch and JAX adapters: their first derivatives with any cotangent (J, V, Q, A
and d), their second derivatives, their Fisher-vector products and the derivative of their average
reward, against references written from the model's data alone (:mod:`pgexact.theorems._reference`:
dense ``numpy.linalg.solve``, backward recursions, forward marginals, the dense Fisher matrix of the
explicit score, the stationary distribution by one square solve), differentiated by complex steps;
they share no code with the adapters (numpy/scipy LU or Krylov solves differentiated implicitly by
torch or JAX, :func:`pgexact.exact.fisher_pi_metric`, :mod:`pgexact.average`).

Each adapter's theorems are registered only when its framework can be imported, so ``pgexact
verify`` on a machine without torch or jax simply does not list them. The framework is imported
when a theorem runs, not when the registry loads.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

import numpy as np

from . import _reference as ref
from .finite import COMPLEX_REASON, IDENTITY_TOL, Problem, _multi_step
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []

SOURCE = (
    "Sutton et al. 2000, 'Policy gradient methods for reinforcement learning with function approximation', "
    "Theorem 1 (dJ/dpi = rho Q, and the adjoint of the Bellman equation for V and Q); Furmston, Lever & "
    "Barber 2016, 'Approximate Newton methods for policy search in Markov decision processes', JMLR 17(226) "
    "(second derivatives); course notes 'Policy Gradient', section 'Neural policies'"
)


# ----------------------------------------------------------------------------- instances, references
def _instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray, dict[str, Any], np.ndarray, dict[str, Any]]:
    """A problem, its policy matrix, random cotangents of (J, V, Q, A, d), a random direction u, and
    ``extra``: a random θ-direction v (Fisher) and three random directions tangent to the simplex
    (rows summing to 0; the average reward is defined on the simplex only)."""
    pr = _multi_step(rng)
    pi = pr.policy.probs(pr.theta)
    vals = ref.values(pr.mdp, pi)
    cot = {
        "J": float(rng.standard_normal()),
        "V": rng.standard_normal(vals.V.shape),
        "Q": rng.standard_normal(vals.Q.shape),
        "A": rng.standard_normal(vals.A.shape),
        "d": rng.standard_normal(pi.shape[0]),
        "rho": float(rng.standard_normal()),
    }
    u = rng.standard_normal(pi.shape)
    tangents = rng.standard_normal((3, *pi.shape))
    tangents -= tangents.mean(axis=-1, keepdims=True)
    extra = {"v": rng.standard_normal(pr.policy.n_params), "tangents": tangents}
    return pr, pi, cot, u, extra


def _ref_occupancy(mdp: Any, pi: np.ndarray) -> np.ndarray:
    r"""Normalized occupancy: :math:`\rho (1-\gamma)`, or :math:`\sum_t \gamma^t p_t / \sum_t \gamma^t`."""
    w = ref.state_weights(mdp, pi)
    if mdp.horizon is None:
        return w * (1.0 - mdp.gamma)
    return w.sum(axis=0) / np.sum(mdp.gamma ** np.arange(mdp.horizon))


def _ref_pairing(mdp: Any, pi: np.ndarray, cot: dict[str, Any]) -> Any:
    r""":math:`c_J J + \langle\bar V, V\rangle + \langle\bar Q, Q\rangle + \langle\bar A, A\rangle + \langle\bar d, d\rangle`, complex-safe."""
    v = ref.values(mdp, pi)
    return (cot["J"] * v.J + np.sum(cot["V"] * v.V) + np.sum(cot["Q"] * v.Q) + np.sum(cot["A"] * v.A)
            + np.sum(cot["d"] * _ref_occupancy(mdp, pi)))


def _ref_vjp(inst: Any) -> np.ndarray:
    """Complex-step gradient in every entry of pi of the reference pairing (h = 1e-30)."""
    pr, pi, cot = inst[:3]
    h = ref.COMPLEX_STEP
    out = np.empty(pi.shape)
    for idx in np.ndindex(*pi.shape):
        step = np.zeros(pi.shape, dtype=complex)
        step[idx] = 1j * h
        out[idx] = np.imag(_ref_pairing(pr.mdp, pi + step, cot)) / h
    return out


def _ref_pi_gradient(mdp: Any, pi: np.ndarray) -> np.ndarray:
    r""":math:`\partial J/\partial\pi = \rho(s) Q(s, a)` (finite horizon :math:`\sum_t \gamma^t p_t Q_t`), complex-safe."""
    w, Q = ref.state_weights(mdp, pi), ref.values(mdp, pi).Q
    return w[:, None] * Q if mdp.horizon is None else np.einsum("ts,tsa->sa", w, Q)


def _ref_pi_hvp(inst: Any) -> np.ndarray:
    """Complex-step derivative along u of the reference dJ/dpi: the Hessian of J in pi applied to u."""
    pr, pi, _, u = inst[:4]
    h = ref.COMPLEX_STEP
    return np.imag(_ref_pi_gradient(pr.mdp, pi + 1j * h * u)) / h


def _ref_fvp(inst: Any) -> np.ndarray:
    r""":math:`F v` with the dense :math:`F = \sum_s d_\pi(s)\sum_a \pi\,\psi\psi^\top` of the explicit score
    :math:`\psi = \phi - \sum_b \pi(b|s)\phi(s, b)` and the reference occupancy."""
    pr, pi, extra = inst[0], inst[1], inst[4]
    return ref.fisher(pr.policy, pr.theta, _ref_occupancy(pr.mdp, pi)) @ extra["v"]


def _ref_gain(mdp: Any, pi: np.ndarray) -> Any:
    r"""Gain :math:`\rho = d^\top r_\pi` with :math:`d (I - P_\pi) = 0`, :math:`d 1 = 1` (the last balance
    equation replaced by the normalization; one square LU solve), complex-safe."""
    P_pi, r_pi = ref.chain(mdp, pi)
    M = (np.eye(P_pi.shape[0]) - P_pi).T.astype(np.result_type(pi, float))
    M[-1, :] = 1.0
    b = np.zeros(P_pi.shape[0])
    b[-1] = 1.0
    return np.linalg.solve(M, b) @ r_pi


def _ref_gain_derivatives(inst: Any) -> np.ndarray:
    """Complex-step derivatives of the reference gain along the three tangent directions."""
    pr, pi, extra = inst[0], inst[1], inst[4]
    h = ref.COMPLEX_STEP
    return inst[2]["rho"] * np.array([np.imag(_ref_gain(pr.mdp, pi + 1j * h * t)) / h for t in extra["tangents"]])


def _ref_directional(inst: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Complex-step derivatives along u of the reference V and of the normalized occupancy :math:`d_\pi`."""
    pr, pi, _, u = inst[:4]
    h = ref.COMPLEX_STEP
    p = pi + 1j * h * u
    return np.imag(ref.values(pr.mdp, p).V) / h, np.imag(_ref_occupancy(pr.mdp, p)) / h


def _occupancy_derivative_unnormalized(inst: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""The mistake of the occupancy's derivative without its normalization (:math:`1-\gamma`, or
    :math:`1/\sum_{t<H}\gamma^t`)."""
    pr = inst[0]
    dV, dd = _ref_directional(inst)
    mass = 1.0 / (1.0 - pr.mdp.gamma) if pr.mdp.horizon is None else float(np.sum(pr.mdp.gamma ** np.arange(pr.mdp.horizon)))
    return dV, mass * dd


def _along(G: np.ndarray, inst: Any) -> np.ndarray:
    """A gradient in pi (S, A) applied to the tangent directions of ``inst``."""
    return np.einsum("sa,ksa->k", G, inst[4]["tangents"])


def _ones_like(cot: dict[str, Any]) -> dict[str, Any]:
    """The mistake of a backward pass that ignores its cotangent (as if every output were seeded with 1)."""
    return {k: np.ones_like(v) if isinstance(v, np.ndarray) else 1.0 for k, v in cot.items()}


# ----------------------------------------------------------------------------- torch
#: What each adapter returns on an instance: (VJP of the pairing, Hessian of J in pi applied to u, the
#: Fisher-vector product F v of the instance's parametrization, the gradient of a random multiple of the
#: gain in pi applied to the tangent directions, the derivatives of V and d_pi along u by forward rules).
Outputs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]


def _torch(inst: Any, *, ignore_cotangent: bool = False) -> Outputs:
    """The five outputs through pgexact.torch."""
    import torch  # noqa: PLC0415 - optional, imported when the theorem runs

    import pgexact.torch as pt  # noqa: PLC0415

    pr, pi_np, cot, u, extra = inst
    cot = _ones_like(cot) if ignore_cotangent else cot
    mdp = pr.mdp
    pi = torch.tensor(pi_np, requires_grad=True)
    total = (cot["J"] * pt.expected_return(mdp, pi) + (torch.tensor(cot["V"]) * pt.values(mdp, pi)).sum()
             + (torch.tensor(cot["Q"]) * pt.action_values(mdp, pi)).sum()
             + (torch.tensor(cot["A"]) * pt.advantages(mdp, pi)).sum()
             + (torch.tensor(cot["d"]) * pt.occupancy(mdp, pi)).sum())
    (g,) = torch.autograd.grad(total, pi)
    (G,) = torch.autograd.grad(pt.expected_return(mdp, pi), pi, create_graph=True)
    (Hu,) = torch.autograd.grad((G * torch.tensor(u)).sum(), pi)
    phi = torch.tensor(ref.logit_features(pr.policy))  # the parametrization's definition: z = phi theta
    Fv = pt.fisher_vector_product(mdp, lambda th: torch.softmax(phi @ th, dim=-1), torch.tensor(pr.theta),
                                  torch.tensor(extra["v"]))
    (Grho,) = torch.autograd.grad(cot["rho"] * pt.average_reward(mdp, pi), pi)
    return g.numpy(), Hu.numpy(), Fv.numpy(), _along(Grho.numpy(), inst), _torch_forward_rule(inst)


def _torch_forward_rule(inst: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Derivatives along u of V and :math:`d_\pi` through pgexact.torch. Discounted instances: the forward
    (jvp) rule of the adapter's solve applied directly to :math:`V = M_\pi^{-1} r_\pi` and
    :math:`y = M_\pi^{-\top}\mu_0` (:math:`d_\pi = (1-\gamma) y`): torch's forward-mode AD runs the same
    rule, but its first use imports torch._dynamo (seconds of CPU), too much for the default run. Finite
    horizons (no solve): reverse mode twice, :math:`\partial_w \langle J^\top w, u\rangle`."""
    import torch  # noqa: PLC0415

    import pgexact.torch as pt  # noqa: PLC0415

    pr, pi_np, _, u_np = inst[:4]
    mdp = pr.mdp
    pi, u = torch.tensor(pi_np, requires_grad=True), torch.tensor(u_np)
    if mdp.horizon is not None:
        out = []
        for f in (pt.values, pt.occupancy):
            y = f(mdp, pi)
            w = torch.zeros_like(y, requires_grad=True)
            (back,) = torch.autograd.grad((y * w).sum(), pi, create_graph=True)
            out.append(torch.autograd.grad((back * u).sum(), w)[0].numpy())
        return out[0], out[1]
    pi = pi.detach()
    r, mu0 = torch.tensor(np.asarray(mdp.r)), torch.tensor(np.asarray(mdp.mu0))

    class Saved:  # what the solve's setup_context saves for its forward rule
        def __init__(self, x: Any, transpose: bool) -> None:
            self.saved_tensors, self.mdp, self.tol, self.transpose = (pi, x), mdp, None, transpose

    V = pt._Solve.apply(pi, (pi * r).sum(dim=1), mdp, None, False)
    dV = pt._Solve.jvp(Saved(V, False), u, (u * r).sum(dim=1))
    y = pt._Solve.apply(pi, mu0, mdp, None, True)
    dy = pt._Solve.jvp(Saved(y, True), u, None)
    return dV.numpy(), (1.0 - mdp.gamma) * dy.numpy()


# ----------------------------------------------------------------------------- jax
def _jax(inst: Any, *, ignore_cotangent: bool = False) -> Outputs:
    """The five outputs through pgexact.jax, in one compiled program."""
    import jax  # noqa: PLC0415 - optional, imported when the theorem runs

    jax.config.update("jax_enable_x64", True)
    import pgexact.jax as pj  # noqa: PLC0415

    jnp = jax.numpy
    pr, pi_np, cot, u, extra = inst
    cot = _ones_like(cot) if ignore_cotangent else cot
    mdp = pr.mdp
    phi = jnp.asarray(ref.logit_features(pr.policy))

    def outputs(p: Any) -> Any:
        return (pj.expected_return(mdp, p), pj.values(mdp, p), pj.action_values(mdp, p), pj.advantages(mdp, p),
                pj.occupancy(mdp, p))

    def program(p: Any, cotangents: Any, w: Any, theta: Any, v: Any) -> Any:
        g = jax.vjp(outputs, p)[1](cotangents[:5])[0]
        Hw = jax.jvp(jax.grad(lambda q: pj.expected_return(mdp, q)), (p,), (w,))[1]
        Fv = pj.fisher_vector_product(mdp, lambda th: jax.nn.softmax(phi @ th, axis=-1), theta, v)
        Grho = jax.grad(lambda q: cotangents[5] * pj.average_reward(mdp, q))(p)
        dV, dd = jax.jvp(lambda q: (pj.values(mdp, q), pj.occupancy(mdp, q)), (p,), (w,))[1]
        return g, Hw, Fv, Grho, dV, dd

    args = (jnp.asarray(pi_np), tuple(jnp.asarray(cot[k]) for k in ("J", "V", "Q", "A", "d", "rho")), jnp.asarray(u),
            jnp.asarray(pr.theta), jnp.asarray(extra["v"]))
    # one compiled program per instance, shared by the theorem and its controls (JAX's eager
    # dispatch of the same steps is ~10x slower; the model's arrays are constants of the program, so
    # instances cannot share one). Compiling dominated (0.6-0.9 s a program; it runs in ~10 ms):
    # with XLA's backend optimizations, fusion emitters and parallel codegen off it takes 0.1-0.2 s
    # (measured on the default instances), and the residuals stay ~1e-15.
    if _COMPILED.get("instance") is not inst:
        lowered = jax.jit(program).lower(*args)
        try:
            compiled = lowered.compile(_QUICK_COMPILE)
        except Exception:  # noqa: BLE001 - an XLA without these options: compile with its defaults
            compiled = lowered.compile()
        _COMPILED.update(instance=inst, program=compiled)
    out = _COMPILED["program"](*args)
    g, Hu, Fv, Grho, dV, dd = (np.asarray(x) for x in out)
    return g, Hu, Fv, _along(Grho, inst), (dV, dd)


_COMPILED: dict[str, Any] = {}
#: XLA compiler options of the JAX theorem's programs: no backend optimization (tiny programs).
_QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
                  "xla_cpu_use_fusion_emitters": False, "xla_cpu_parallel_codegen_split_count": 1}


# ----------------------------------------------------------------------------- the theorems
def _expected(inst: Any) -> Outputs:
    return _ref_vjp(inst), _ref_pi_hvp(inst), _ref_fvp(inst), _ref_gain_derivatives(inst), _ref_directional(inst)


def _value_term_only(inst: Any) -> np.ndarray:
    r"""The mistake of differentiating only Q in :math:`\rho Q` (the visitation's derivative dropped)."""
    pr, pi, _, u = inst[:4]
    h = ref.COMPLEX_STEP
    w = ref.state_weights(pr.mdp, pi)
    dQ = np.imag(ref.values(pr.mdp, pi + 1j * h * u).Q) / h
    return w[:, None] * dQ if pr.mdp.horizon is None else np.einsum("ts,tsa->sa", w, dQ)


def _fvp_unnormalized(inst: Any) -> np.ndarray:
    r"""The mistake of weighting the Fisher by the policy-gradient weights :math:`\sum_t \gamma^t p_t`
    (:math:`d_\pi/(1-\gamma)`) instead of the normalized occupancy :math:`d_\pi`."""
    pr, pi, extra = inst[0], inst[1], inst[4]
    w = ref.state_weights(pr.mdp, pi)
    w = w if pr.mdp.horizon is None else w.sum(axis=0)
    return ref.fisher(pr.policy, pr.theta, w) @ extra["v"]


def _fvp_uncentred(inst: Any) -> np.ndarray:
    r"""The mistake of the uncentred score :math:`\phi(s, a)` in place of :math:`\nabla\log\pi` in F."""
    pr, pi, extra = inst[0], inst[1], inst[4]
    phi = ref.logit_features(pr.policy)
    F = np.einsum("s,sa,san,sam->nm", _ref_occupancy(pr.mdp, pi), pi, phi, phi)
    return F @ extra["v"]


def _gain_gradient_fixed_d(inst: Any) -> np.ndarray:
    r"""The mistake :math:`\partial\rho/\partial\pi(a|s) = d(s) r(s, a)`: the stationary distribution held fixed."""
    pr, pi = inst[0], inst[1]
    P_pi, _ = ref.chain(pr.mdp, pi)
    M = (np.eye(P_pi.shape[0]) - P_pi).T
    M[-1, :] = 1.0
    d = np.linalg.solve(M, np.eye(P_pi.shape[0])[-1])
    return inst[2]["rho"] * _along(d[:, None] * np.asarray(pr.mdp.r), inst)


def _replace(out: Outputs, i: int, value: np.ndarray) -> Outputs:
    return tuple(value if j == i else x for j, x in enumerate(out))  # type: ignore[return-value]


def _register(name: str, through: Callable[..., Outputs], how: str,
              default_instances: int | None = None) -> None:
    identity(
        id=f"adapters.{name}",
        statement=r"\text{through pgexact." + name + r"}: \frac{\partial}{\partial\pi}\Big(c_J J + \langle\bar V, V\rangle"
        r" + \langle\bar Q, Q\rangle + \langle\bar A, A\rangle + \langle\bar d, d_\pi\rangle\Big),\ \nabla^2_\pi J\,[u] \text{ ("
        + how + r")},\ F(\theta) v = \textstyle\sum_s d_\pi(s) \sum_a \pi\,\psi\psi^\top v"
        r"\ ,\ c_\rho\langle\nabla_\pi \rho, t\rangle\ \text{and}\ \partial_u (V, d_\pi) = \text{their references}",
        source=SOURCE + "; Kakade 2002, 'A natural policy gradient', sec. 3 (the state-averaged Fisher); "
        "Puterman 1994, sec. 8.2 (the gain d r_pi of a unichain policy)",
        reference="complex-step derivatives (h = 1e-30), from J, V, Q, A by a dense numpy.linalg.solve (finite "
        "horizon: backward recursion) and d_pi, rho by the transposed solve or forward marginals: the "
        "gradient in every entry of pi of the pairing with random cotangents, and the derivative along a "
        "random u (any direction, off the simplex) of dJ/dpi = rho(s) Q(s, a); the dense Fisher matrix of "
        "the explicit score phi - E_pi[phi] weighted by the reference occupancy, times a random v (the "
        "adapters use jvp/vjp of the softmax and pgexact.exact.fisher_pi_metric); the complex-step "
        "derivative of the gain d r_pi (d from one square solve of the balance equations with the "
        "normalization) along three random directions tangent to the simplex, times a random cotangent; the "
        "complex-step derivatives of V and d_pi along u (the adapters' forward rules: jax.jvp, and the torch "
        "solve's jvp rule or reverse mode twice)",
        instance=_instance,
        computed=through,
        expected=_expected,
        tolerance=IDENTITY_TOL,
        tolerance_reason=COMPLEX_REASON,
        mutants={
            "cotangents ignored (every output seeded with 1)": lambda inst: through(inst, ignore_cotangent=True),
            "dJ/dpi saved as a constant by the backward pass (second derivative 0)":
                lambda inst: _replace(through(inst), 1, np.zeros_like(inst[1])),
            "the visitation's derivative dropped (only Q differentiated)":
                lambda inst: _replace(through(inst), 1, _value_term_only(inst)),
            "Fisher weighted by the unnormalized visitation (d / (1 - gamma))":
                lambda inst: _replace(through(inst), 2, _fvp_unnormalized(inst)),
            "Fisher of the uncentred score (phi instead of grad log pi)":
                lambda inst: _replace(through(inst), 2, _fvp_uncentred(inst)),
            "gain's gradient with the stationary distribution held fixed (d r instead of d Q)":
                lambda inst: _replace(through(inst), 3, _gain_gradient_fixed_d(inst)),
            "occupancy's forward derivative without its normalization":
                lambda inst: _replace(through(inst), 4, _occupancy_derivative_unnormalized(inst)),
        },
        default_instances=default_instances,
    )


if importlib.util.find_spec("torch") is not None:
    _register("torch", _torch, "double backward, create_graph=True")
if importlib.util.find_spec("jax") is not None:
    # every instance traces and compiles one XLA program (about 0.35 s of CPU): three in the default run
    _register("jax", _jax, "jax.jvp of jax.grad", default_instances=3)
