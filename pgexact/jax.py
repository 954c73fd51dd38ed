r"""JAX adapter: exact J, V, Q, A and occupancy as differentiable JAX functions of a policy array.

``expected_return(mdp, pi)`` takes the (S, A) array of action probabilities a policy network
outputs for every state of a finite MDP and returns the exact J; its ``jax.custom_vjp`` is the
closed form :math:`\partial J/\partial\pi(a|s) = d_\pi(s) Q^\pi(s, a)/(1-\gamma)` (finite horizon:
:math:`\sum_t \gamma^t p_t(s) Q_t(s, a)`) of :mod:`pgexact.exact.policy_free`, so ``jax.grad``
of ``expected_return(mdp, pi_fn(params))`` is the exact policy gradient in the network's
parameters. The exact evaluation runs in numpy through ``jax.pure_callback`` (so it works under
``jax.jit`` and ``jax.vmap``); nothing is differentiated through a linear solve's internals.

float64 is required: call ``jax.config.update("jax_enable_x64", True)`` before building arrays;
otherwise every function raises ``RuntimeError`` (JAX would silently compute in float32).
A concrete ``pi`` is validated on entry (``ValueError`` naming the first row that is not a
distribution); under ``jax.jit`` the values are only seen inside the callback, so the same
``ValueError`` reaches the caller wrapped in JAX's runtime error.

:func:`fisher_vector_product` gives the exact state-averaged Fisher-vector product of any
parametrization by one ``jax.jvp`` and one ``jax.vjp``.

Requires the optional dependency JAX (``pip install "pgexact[jax]"``). Source of the formulas:
Sutton et al. (2000), Theorem 1; Kakade (2002), sec. 3; the course notes' policy-gradient
chapter, section "Neural policies".

Examples
--------
>>> import jax, jax.numpy as jnp
>>> jax.config.update("jax_enable_x64", True)
>>> import pgexact.jax as pj
>>> from pgexact.mdps import gridworld
>>> mdp = gridworld(3, 3, gamma=0.9)
>>> J_of = lambda W: pj.expected_return(mdp, jax.nn.softmax(W, axis=-1))
>>> g = jax.jit(jax.grad(J_of))(jnp.zeros((9, 4)))
>>> g.shape, g.dtype
((9, 4), dtype('float64'))
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("pgexact.jax needs JAX: pip install 'pgexact[jax]'") from exc

from .exact.evaluation import evaluate as _evaluate
from .exact.evaluation import occupancy as _occupancy
from .exact.policy_free import (
    advantage_vjp,
    fisher_pi_metric,
    occupancy_vjp,
    value_and_pi_gradient,
    value_vjp,
)
from ._validation import as_probabilities, check_callable
from .exact._krylov import check_tol
from .models.finite_mdp import check_mdp

__all__ = [
    "expected_return",
    "values",
    "action_values",
    "advantages",
    "occupancy",
    "fisher_vector_product",
    "average_reward",
]


def _require_x64() -> None:
    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            "pgexact.jax computes in float64 and JAX is in float32 mode: call "
            "jax.config.update('jax_enable_x64', True) (or set JAX_ENABLE_X64=1) before creating arrays"
        )


def _check(mdp: Any, pi: Any, name: str = "pi") -> None:
    _require_x64()
    check_mdp(mdp)
    shape, dtype = getattr(pi, "shape", None), getattr(pi, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"{name} must be a JAX array of shape (S, A), got {type(pi).__name__}")
    if tuple(shape) != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"{name} must have shape (S, A)=({mdp.n_states}, {mdp.n_actions}), got {tuple(shape)}")
    if jnp.dtype(dtype) != jnp.float64:
        raise TypeError(f"{name} has dtype {dtype}; pgexact computes in float64: cast it with .astype(jnp.float64)")
    if not isinstance(pi, jax.core.Tracer):  # concrete: check the rows now (under jit: in the callback)
        as_probabilities(np.asarray(pi), name, action_mask=mdp.action_mask)


def _check_point(params: Any, v: Any) -> None:
    """``params``: a pytree of float64 arrays; ``v`` of the same structure, shapes and dtypes."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    ok = bool(leaves) and all(
        hasattr(x, "shape") and hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) for x in leaves
    )
    if not ok:
        raise TypeError(f"params must be a pytree of floating-point arrays, got {type(params).__name__}")
    v_leaves, v_tree = jax.tree_util.tree_flatten(v)
    if v_tree != tree:
        raise TypeError(f"v must have the pytree structure of params ({tree}), got {v_tree}")
    for i, (x, w) in enumerate(zip(leaves, v_leaves)):
        if getattr(w, "shape", None) != x.shape or getattr(w, "dtype", None) != x.dtype:
            raise ValueError(
                f"v's leaf {i} must have the shape and dtype of params' ({x.shape}, {x.dtype}), "
                f"got {getattr(w, 'shape', None)}, {getattr(w, 'dtype', type(w).__name__)}"
            )


def _sds(shape: tuple[int, ...]) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(shape, jnp.float64)


def _callback(fn: Callable[..., Any], shapes: Any, *args: Any) -> Any:
    return jax.pure_callback(fn, shapes, *args, vmap_method="sequential")


# --------------------------------------------------------------------------- J
def _return_and_gradient(mdp: Any, tol: Any, pi: Any) -> tuple[Any, Any]:
    def cb(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        J, G, _ = value_and_pi_gradient(mdp, np.asarray(p), tol=tol)
        return np.float64(J), G

    return _callback(cb, (_sds(()), _sds(pi.shape)), pi)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _expected_return(mdp: Any, tol: Any, pi: Any) -> Any:
    return _return_and_gradient(mdp, tol, pi)[0]


def _expected_return_fwd(mdp: Any, tol: Any, pi: Any) -> tuple[Any, Any]:
    return _return_and_gradient(mdp, tol, pi)


def _expected_return_bwd(mdp: Any, tol: Any, G: Any, gJ: Any) -> tuple[Any]:
    return (gJ * G,)


_expected_return.defvjp(_expected_return_fwd, _expected_return_bwd)


def expected_return(mdp: Any, pi: Any, *, tol: float | None = None) -> Any:
    r"""Exact J of the policy array ``pi`` (shape (S, A), float64), differentiable in ``pi``.

    .. math:: \frac{\partial J}{\partial\pi(a|s)} = \frac{d_\pi(s) Q^\pi(s, a)}{1-\gamma}
        \quad\text{(finite horizon: } \textstyle\sum_t \gamma^t p_t(s) Q_t(s, a))

    Forward: one exact evaluation (:func:`pgexact.evaluate`) whose closed-form gradient is kept
    as the residual; backward: its product with the incoming cotangent. ``tol``: sparse ``P`` only.
    """
    _check(mdp, pi)
    check_tol(tol)
    return _expected_return(mdp, tol, pi)


# --------------------------------------------------------------------------- V, Q, A, d
def _forward_cb(mdp: Any, tol: Any, what: str) -> Callable[[np.ndarray], np.ndarray]:
    def cb(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p)
        if what == "d":
            return _occupancy(mdp, p, tol=tol)
        return np.asarray(getattr(_evaluate(mdp, p, tol=tol), what))

    return cb


def _backward_cb(mdp: Any, tol: Any, what: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def cb(p: np.ndarray, g: np.ndarray) -> np.ndarray:
        p, g = np.asarray(p), np.asarray(g)
        if what == "V":
            return value_vjp(mdp, p, V_bar=g, tol=tol)
        if what == "Q":
            return value_vjp(mdp, p, Q_bar=g, tol=tol)
        if what == "A":
            return advantage_vjp(mdp, p, g, tol=tol)
        return occupancy_vjp(mdp, p, g, tol=tol)

    return cb


def _out_shape(mdp: Any, what: str) -> tuple[int, ...]:
    S, A, H = mdp.n_states, mdp.n_actions, mdp.horizon
    if what == "d":
        return (S,)
    lead = () if H is None else (H,)
    return lead + ((S,) if what == "V" else (S, A))


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _evaluated(mdp: Any, tol: Any, what: str, pi: Any) -> Any:
    return _callback(_forward_cb(mdp, tol, what), _sds(_out_shape(mdp, what)), pi)


def _evaluated_fwd(mdp: Any, tol: Any, what: str, pi: Any) -> tuple[Any, Any]:
    return _evaluated(mdp, tol, what, pi), pi


def _evaluated_bwd(mdp: Any, tol: Any, what: str, pi: Any, g: Any) -> tuple[Any]:
    return (_callback(_backward_cb(mdp, tol, what), _sds(pi.shape), pi, g),)


_evaluated.defvjp(_evaluated_fwd, _evaluated_bwd)


def values(mdp: Any, pi: Any, *, tol: float | None = None) -> Any:
    r"""Exact V (shape (S,), or (H, S) for a finite horizon), differentiable in ``pi`` (:func:`pgexact.exact.value_vjp`)."""
    _check(mdp, pi)
    check_tol(tol)
    return _evaluated(mdp, tol, "V", pi)


def action_values(mdp: Any, pi: Any, *, tol: float | None = None) -> Any:
    r"""Exact Q (shape (S, A), or (H, S, A)), differentiable in ``pi`` (:func:`pgexact.exact.value_vjp`)."""
    _check(mdp, pi)
    check_tol(tol)
    return _evaluated(mdp, tol, "Q", pi)


def advantages(mdp: Any, pi: Any, *, tol: float | None = None) -> Any:
    r"""Exact A = Q − V (shape (S, A), or (H, S, A)), differentiable in ``pi`` (:func:`pgexact.exact.advantage_vjp`)."""
    _check(mdp, pi)
    check_tol(tol)
    return _evaluated(mdp, tol, "A", pi)


def occupancy(mdp: Any, pi: Any, *, tol: float | None = None) -> Any:
    r"""Normalized occupancy :math:`d_\pi` (shape (S,)), differentiable in ``pi`` (:func:`pgexact.exact.occupancy_vjp`)."""
    _check(mdp, pi)
    check_tol(tol)
    return _evaluated(mdp, tol, "d", pi)


# --------------------------------------------------------------------------- Fisher
def fisher_vector_product(
    mdp: Any, pi_fn: Callable[[Any], Any], params: Any, v: Any, *, tol: float | None = None
) -> Any:
    r"""Exact state-averaged Fisher-vector product :math:`F(\theta) v` of the parametrization ``pi_fn``.

    .. math:: F v = J_\theta^\top\, \mathrm{diag}\!\left(\frac{d_\pi(s)}{\pi(a|s)}\right) J_\theta\, v,
        \qquad J_\theta = \partial\pi_\theta / \partial\theta

    (Kakade 2002, sec. 3; :func:`pgexact.exact.fisher_vector_product_jvp`): :math:`J_\theta v` by
    ``jax.jvp``, :math:`J_\theta^\top w` by ``jax.vjp``, :math:`d_\pi` the normalized occupancy.
    Works under ``jax.jit``; F is not differentiated.

    Parameters
    ----------
    mdp : FiniteMDP
    pi_fn : callable
        ``pi_fn(params) -> pi``, float64 array of shape (S, A).
    params : pytree
        The point :math:`\theta`.
    v : pytree like ``params``
        The tangent vector.

    Returns
    -------
    pytree like ``params``
    """
    _require_x64()
    check_mdp(mdp)
    check_callable("pi_fn", pi_fn)
    check_tol(tol)
    _check_point(params, v)
    pi, u = jax.jvp(pi_fn, (params,), (v,))
    _check(mdp, pi, name="pi_fn(params)")
    _, vjp_fn = jax.vjp(pi_fn, params)

    def cb(p: np.ndarray, uu: np.ndarray) -> np.ndarray:
        p = np.asarray(p)
        return fisher_pi_metric(p, _occupancy(mdp, p, tol=tol), np.asarray(uu), name="jvp of pi_fn along v")

    w = _callback(cb, _sds(pi.shape), pi, u)
    return vjp_fn(w)[0]


# --------------------------------------------------------------------------- average reward
def _gain_and_gradient(mdp: Any, pi: Any) -> tuple[Any, Any]:
    from .average.evaluation import _evaluate as _average_evaluate

    def cb(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ev = _average_evaluate(mdp, as_probabilities(np.asarray(p), "pi", action_mask=mdp.action_mask))
        return np.float64(ev.rho), ev.d[:, None] * ev.Q

    return _callback(cb, (_sds(()), _sds(pi.shape)), pi)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _average_reward(mdp: Any, pi: Any) -> Any:
    return _gain_and_gradient(mdp, pi)[0]


def _average_reward_fwd(mdp: Any, pi: Any) -> tuple[Any, Any]:
    return _gain_and_gradient(mdp, pi)


def _average_reward_bwd(mdp: Any, G: Any, g: Any) -> tuple[Any]:
    return (g * G,)


_average_reward.defvjp(_average_reward_fwd, _average_reward_bwd)


def average_reward(mdp: Any, pi: Any) -> Any:
    r"""Exact gain ρ of the policy array ``pi`` (shape (S, A), float64, unichain), differentiable in ``pi``.

    .. math:: \rho = d_\pi^\top r_\pi, \qquad \frac{\partial\rho}{\partial\pi(a|s)} = d_\pi(s)\, Q(s, a)

    (:func:`pgexact.average.pi_gradient`). ``mdp``: a :class:`~pgexact.FiniteMDP` (γ ignored)
    or a pair ``(P, r)``.
    """
    from .average.evaluation import as_average_model

    mdp = as_average_model(mdp)
    _check(mdp, pi)
    return _average_reward(mdp, pi)
