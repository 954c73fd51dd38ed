r"""Theorems about the PyTorch and JAX adapters: their first derivatives with any cotangent, and their
second derivatives, against complex-step derivatives of reference values written from the model's
data alone (:mod:`pgexact.theorems._reference`: dense ``numpy.linalg.solve``, backward recursions,
forward marginals), which share no code with the adapters (numpy/scipy LU or Krylov solves
differentiated implicitly by torch or JAX).

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
def _instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray, dict[str, Any], np.ndarray]:
    """A problem, its policy matrix, random cotangents of (J, V, Q, d) and a random direction u."""
    pr = _multi_step(rng)
    pi = pr.policy.probs(pr.theta)
    vals = ref.values(pr.mdp, pi)
    cot = {
        "J": float(rng.standard_normal()),
        "V": rng.standard_normal(vals.V.shape),
        "Q": rng.standard_normal(vals.Q.shape),
        "d": rng.standard_normal(pi.shape[0]),
    }
    return pr, pi, cot, rng.standard_normal(pi.shape)


def _ref_occupancy(mdp: Any, pi: np.ndarray) -> np.ndarray:
    r"""Normalized occupancy: :math:`\rho (1-\gamma)`, or :math:`\sum_t \gamma^t p_t / \sum_t \gamma^t`."""
    w = ref.state_weights(mdp, pi)
    if mdp.horizon is None:
        return w * (1.0 - mdp.gamma)
    return w.sum(axis=0) / np.sum(mdp.gamma ** np.arange(mdp.horizon))


def _ref_pairing(mdp: Any, pi: np.ndarray, cot: dict[str, Any]) -> Any:
    r""":math:`c_J J + \langle\bar V, V\rangle + \langle\bar Q, Q\rangle + \langle\bar d, d\rangle`, complex-safe."""
    v = ref.values(mdp, pi)
    return (cot["J"] * v.J + np.sum(cot["V"] * v.V) + np.sum(cot["Q"] * v.Q)
            + np.sum(cot["d"] * _ref_occupancy(mdp, pi)))


def _ref_vjp(inst: Any) -> np.ndarray:
    """Complex-step gradient in every entry of pi of the reference pairing (h = 1e-30)."""
    pr, pi, cot, _ = inst
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
    pr, pi, _, u = inst
    h = ref.COMPLEX_STEP
    return np.imag(_ref_pi_gradient(pr.mdp, pi + 1j * h * u)) / h


def _ones_like(cot: dict[str, Any]) -> dict[str, Any]:
    """The mistake of a backward pass that ignores its cotangent (as if every output were seeded with 1)."""
    return {k: np.ones_like(v) if isinstance(v, np.ndarray) else 1.0 for k, v in cot.items()}


# ----------------------------------------------------------------------------- torch
def _torch(inst: Any, *, ignore_cotangent: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(VJP of the pairing, Hessian of J in pi applied to u) through pgexact.torch."""
    import torch  # noqa: PLC0415 - optional, imported when the theorem runs

    import pgexact.torch as pt  # noqa: PLC0415

    pr, pi_np, cot, u = inst
    cot = _ones_like(cot) if ignore_cotangent else cot
    pi = torch.tensor(pi_np, requires_grad=True)
    total = (cot["J"] * pt.expected_return(pr.mdp, pi) + (torch.tensor(cot["V"]) * pt.values(pr.mdp, pi)).sum()
             + (torch.tensor(cot["Q"]) * pt.action_values(pr.mdp, pi)).sum()
             + (torch.tensor(cot["d"]) * pt.occupancy(pr.mdp, pi)).sum())
    (g,) = torch.autograd.grad(total, pi)
    (G,) = torch.autograd.grad(pt.expected_return(pr.mdp, pi), pi, create_graph=True)
    (Hu,) = torch.autograd.grad((G * torch.tensor(u)).sum(), pi)
    return g.numpy(), Hu.numpy()


# ----------------------------------------------------------------------------- jax
def _jax(inst: Any, *, ignore_cotangent: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(VJP of the pairing, Hessian of J in pi applied to u) through pgexact.jax, in one compiled program."""
    import jax  # noqa: PLC0415 - optional, imported when the theorem runs

    jax.config.update("jax_enable_x64", True)
    import pgexact.jax as pj  # noqa: PLC0415

    pr, pi_np, cot, u = inst
    cot = _ones_like(cot) if ignore_cotangent else cot
    mdp = pr.mdp

    def outputs(p: Any) -> Any:
        return (pj.expected_return(mdp, p), pj.values(mdp, p), pj.action_values(mdp, p), pj.occupancy(mdp, p))

    def both(p: Any, cotangents: Any, v: Any) -> Any:
        g = jax.vjp(outputs, p)[1](cotangents)[0]
        Hv = jax.jvp(jax.grad(lambda q: pj.expected_return(mdp, q)), (p,), (v,))[1]
        return g, Hv

    # one compiled program per instance, shared by the theorem and its controls (JAX's eager
    # dispatch of the same steps is ~10x slower, and every new closure compiles anew)
    if _COMPILED.get("instance") is not inst:
        _COMPILED.update(instance=inst, program=jax.jit(both))
    cotangents = tuple(jax.numpy.asarray(cot[k]) for k in ("J", "V", "Q", "d"))
    g, Hv = _COMPILED["program"](jax.numpy.asarray(pi_np), cotangents, jax.numpy.asarray(u))
    return np.asarray(g), np.asarray(Hv)


_COMPILED: dict[str, Any] = {}


# ----------------------------------------------------------------------------- the theorems
def _expected(inst: Any) -> tuple[np.ndarray, np.ndarray]:
    return _ref_vjp(inst), _ref_pi_hvp(inst)


def _value_term_only(inst: Any) -> np.ndarray:
    r"""The mistake of differentiating only Q in :math:`\rho Q` (the visitation's derivative dropped)."""
    pr, pi, _, u = inst
    h = ref.COMPLEX_STEP
    w = ref.state_weights(pr.mdp, pi)
    dQ = np.imag(ref.values(pr.mdp, pi + 1j * h * u).Q) / h
    return w[:, None] * dQ if pr.mdp.horizon is None else np.einsum("ts,tsa->sa", w, dQ)


def _register(name: str, through: Callable[..., tuple[np.ndarray, np.ndarray]], how: str,
              default_instances: int | None = None) -> None:
    identity(
        id=f"adapters.{name}",
        statement=r"\text{through pgexact." + name + r"}: \frac{\partial}{\partial\pi}\Big(c_J J + \langle\bar V, V\rangle"
        r" + \langle\bar Q, Q\rangle + \langle\bar d, d_\pi\rangle\Big) \text{ and } \nabla^2_\pi J\,[u] \text{ (" + how
        + r")} = \text{their complex-step derivatives}",
        source=SOURCE,
        reference="complex-step derivatives (h = 1e-30), from J, V, Q by a dense numpy.linalg.solve (finite "
        "horizon: backward recursion) and d_pi, rho by the transposed solve or forward marginals: the "
        "gradient in every entry of pi of the pairing with random cotangents, and the derivative along a "
        "random u (any direction, off the simplex) of dJ/dpi = rho(s) Q(s, a)",
        instance=_instance,
        computed=through,
        expected=_expected,
        tolerance=IDENTITY_TOL,
        tolerance_reason=COMPLEX_REASON,
        mutants={
            "cotangents ignored (every output seeded with 1)": lambda inst: through(inst, ignore_cotangent=True),
            "dJ/dpi saved as a constant by the backward pass (second derivative 0)":
                lambda inst: (through(inst)[0], np.zeros_like(inst[1])),
            "the visitation's derivative dropped (only Q differentiated)":
                lambda inst: (through(inst)[0], _value_term_only(inst)),
        },
        default_instances=default_instances,
    )


if importlib.util.find_spec("torch") is not None:
    _register("torch", _torch, "double backward, create_graph=True")
if importlib.util.find_spec("jax") is not None:
    # every instance compiles one XLA program (about 0.6 s of CPU): three in the default run
    _register("jax", _jax, "jax.jvp of jax.grad", default_instances=3)
