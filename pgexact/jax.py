r"""JAX adapter: exact J, V, Q, A and occupancy as differentiable JAX functions of a policy array.

``expected_return(mdp, pi)`` takes the (S, A) array of action probabilities a policy network
outputs for every state of a finite MDP and returns the exact J, differentiable to every order:
``jax.grad`` of ``expected_return(mdp, pi_fn(params))`` is the exact policy gradient in the
network's parameters, and ``jax.hessian``, ``jax.jacfwd``, ``jax.jvp`` and grad-of-grad give the
exact second derivatives. Everything works under ``jax.jit`` and ``jax.vmap``.

The values are JAX expressions (:math:`r_\pi = \sum_a \pi r`, :math:`J = \mu_0^\top V`,
:math:`Q = r + \gamma P V`, :math:`A = Q - V`, the finite-horizon recursions by ``lax.scan``) of
the products with ``P`` and of one exact primitive, the linear solve
:math:`x = M_\pi^{-1} b` (or :math:`M_\pi^{-\top} b`) with :math:`M_\pi = I - \gamma P_\pi`. The
solve runs in numpy (LU, or Krylov for a sparse ``P``) through ``jax.pure_callback`` inside
``jax.lax.custom_linear_solve``, which JAX differentiates implicitly, never through the solver:

.. math::

    \mathrm{d}x = M_\pi^{-1}\big(\mathrm{d}b + \gamma\, P_{\mathrm{d}\pi}\, x\big),
    \qquad P_{u}[s, s'] = \textstyle\sum_a u(s, a) P(s'|s, a),

and transposes with the other solve. For J the reverse rule is the policy gradient theorem in
:math:`\pi`-coordinates, :math:`\partial J/\partial\pi(a|s) = d_\pi(s) Q^\pi(s, a)/(1-\gamma)`
(finite horizon :math:`\sum_t \gamma^t p_t(s) Q_t(s, a)`; :mod:`pgexact.exact.policy_free`),
and its derivative the policy Hessian in :math:`\pi` (Furmston, Lever & Barber 2016, sec. 3).

float64 is required: call ``jax.config.update("jax_enable_x64", True)`` before building arrays;
otherwise every function raises ``RuntimeError`` (JAX would silently compute in float32).
``pi`` is validated on entry whenever its values are known at trace time — a concrete array, or
the primal and batch an eager ``jax.grad``, ``jax.jvp``, ``jax.hessian`` or ``jax.vmap`` carries, in
any nesting — with a ``ValueError`` naming ``pi`` and the first row that is not a distribution.

Under ``jax.jit`` (and anything staged: ``lax.scan`` bodies, ``jax.jit(jax.grad(...))``) the values
exist only when the compiled program runs. The same check then runs in the host callback of the
solve (finite horizon: a ``jax.debug.callback`` of its own), so an invalid ``pi`` is never computed
with, but JAX, not pgexact, decides what the caller sees: it catches the callback's ``ValueError``
and raises its own error whose message is ``"INTERNAL: CpuCallback error calling callback:
Traceback ... ValueError: pi[1, :] sums to 0.9, expected 1 (tolerance 1e-09)"`` — a
``jax.errors.JaxRuntimeError`` (a ``RuntimeError``), or in some call orders a plain ``ValueError``
(after a successful call JAX may dispatch through its C++ fast path, which types it so;
jax-ml/jax#34083), with no ``__cause__`` (jax-ml/jax#26102). This cannot be otherwise in JAX
0.10: an exception cannot
leave compiled code as itself (JAX's documentation of ``pure_callback``: exceptions are
side effects, "the behavior of the resulting program is undefined"), and the alternative,
``jax.experimental.checkify.check``, raises a ``ValueError`` only under ``checkify.checkify`` and
refuses to trace under a plain ``jax.jit``. To get pgexact's ``ValueError`` itself, call the
function once outside ``jit`` (or check the array with
:func:`pgexact.policies.as_probabilities`) before compiling.

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
>>> H = jax.jit(jax.hessian(J_of))(jnp.zeros((9, 4)))      # exact, hence symmetric
>>> bool(jnp.allclose(H, H.transpose(2, 3, 0, 1), atol=1e-12))
True
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any, Callable

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("pgexact.jax needs JAX: pip install 'pgexact[jax]'") from exc

from .exact.evaluation import _visitation_mass
from .exact.evaluation import occupancy as _occupancy
from .exact.policy_free import _DiscountedSystem, fisher_pi_metric
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
    known = _known_values(pi)
    if known is not None:  # concrete, or traced eagerly (grad, jvp, vmap): check every policy now
        for p in known.reshape(-1, mdp.n_states, mdp.n_actions):
            as_probabilities(p, name, action_mask=mdp.action_mask)


def _known_values(x: Any) -> np.ndarray | None:
    """Every policy ``x`` stands for, when their values are known at trace time, as an array
    (batch..., S, A); None when they are not (under ``jax.jit``: then the solve's callback checks).

    A concrete array is its own value; an eager ``jax.grad`` / ``jax.jvp`` / ``jax.hessian`` tracer
    carries its concrete primal, an eager ``jax.vmap`` tracer its batch (the batch axis is moved to
    the front), in any nesting.
    """
    def walk(v: Any) -> tuple[np.ndarray, int] | None:  # (values, number of leading batch axes)
        if not isinstance(v, jax.core.Tracer):
            return np.asarray(v), 0
        if hasattr(v, "batch_dim") and hasattr(v, "val"):  # vmap
            if not isinstance(v.batch_dim, int):
                return None
            inner = walk(v.val)
            if inner is None:
                return None
            arr, k = inner
            return np.moveaxis(arr, k + v.batch_dim, 0), k + 1
        if hasattr(v, "primal"):  # jvp, linearize (grad)
            return walk(v.primal)
        return None

    out = walk(x)
    return None if out is None else out[0]


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


# --------------------------------------------------------------------------- primitives
_CACHE = threading.local()


def _system(mdp: Any, p: np.ndarray, tol: Any) -> _DiscountedSystem:
    r"""The factorized :math:`I - \gamma P_\pi` of ``p``, reused while the same ``(mdp, p, tol)`` comes back.

    A forward pass and its derivatives solve with the same matrix; one entry per thread.
    """
    key = getattr(_CACHE, "key", None)
    if key is not None and key[0] is mdp and key[2] == tol and np.array_equal(key[1], p):
        return _CACHE.system
    system = _DiscountedSystem(mdp, p, check_tol(tol))
    _CACHE.key, _CACHE.system = (mdp, p.copy(), tol), system
    return system


class _Operators:
    r"""The products :math:`x \mapsto P x` (S,) to (S, A) and :math:`w \mapsto P^\top w` as JAX expressions.

    Dense ``P``: ``einsum`` with the (S, A, S) array; sparse ``P``: a
    ``jax.experimental.sparse.BCOO`` copy of the (S·A, S) matrix. Both are linear in their
    argument, so JAX differentiates, transposes and batches them to every order.
    """

    def __init__(self, mdp: Any) -> None:
        self.S, self.A = mdp.n_states, mdp.n_actions
        if mdp.is_sparse:
            from jax.experimental import sparse  # noqa: PLC0415 - only for sparse models

            self.P = sparse.BCOO.from_scipy_sparse(mdp.P)
            self.PT = sparse.BCOO.from_scipy_sparse(mdp.P.T.tocsr())
        else:
            self.P, self.PT = jnp.asarray(mdp.P), None
        self.r, self.mu0 = jnp.asarray(mdp.r), jnp.asarray(mdp.mu0)

    def next(self, x: Any) -> Any:
        if self.PT is not None:
            return (self.P @ x).reshape(self.S, self.A)
        return jnp.einsum("sat,t->sa", self.P, x)

    def back(self, w: Any) -> Any:
        if self.PT is not None:
            return self.PT @ w.reshape(-1)
        return jnp.einsum("sa,sat->t", w, self.P)


def _operators(mdp: Any) -> _Operators:
    """:class:`_Operators` of ``mdp``, kept while the same model comes back (one entry per thread)."""
    if getattr(_CACHE, "mdp", None) is not mdp:
        with jax.ensure_compile_time_eval():  # concrete arrays, also when first built inside a trace
            ops = _Operators(mdp)
        _CACHE.mdp, _CACHE.ops = mdp, ops
    return _CACHE.ops


def _solve(mdp: Any, tol: Any, pi: Any, b: Any, transpose: bool) -> Any:
    r""":math:`M_\pi^{-1} b` or :math:`M_\pi^{-\top} b` (:math:`M_\pi = I - \gamma P_\pi`), differentiable to every order.

    ``jax.lax.custom_linear_solve``: the solves run in numpy (LU, or Krylov for a sparse ``P``)
    through ``jax.pure_callback``; JAX differentiates implicitly through ``matvec``, the JAX
    expression of :math:`M_\pi` (or :math:`M_\pi^\top`), and transposes with the other solve.
    """
    ops, gamma = _operators(mdp), mdp.gamma

    def matvec(x: Any) -> Any:
        return x - gamma * (pi * ops.next(x)).sum(axis=1)

    def matvec_t(y: Any) -> Any:
        return y - gamma * ops.back(y[:, None] * pi)

    def numpy_solve(t: bool) -> Callable[[Any, Any], Any]:
        def cb(p: np.ndarray, rhs: np.ndarray) -> np.ndarray:
            system = _system(mdp, as_probabilities(np.asarray(p), "pi", action_mask=mdp.action_mask), tol)
            rhs = np.asarray(rhs)
            return system.solve_t(rhs) if t else system.solve(rhs)

        return lambda _matvec, rhs: _callback(cb, _sds(rhs.shape), pi, rhs)

    if transpose:
        return jax.lax.custom_linear_solve(matvec_t, b, numpy_solve(True), numpy_solve(False))
    return jax.lax.custom_linear_solve(matvec, b, numpy_solve(False), numpy_solve(True))


# --------------------------------------------------------------------------- the values
def _value_tables(mdp: Any, pi: Any, tol: Any) -> tuple[Any, Any]:
    """``(V, Q)``: discounted (S,), (S, A); finite horizon (H, S), (H, S, A)."""
    ops, gamma = _operators(mdp), mdp.gamma
    if mdp.horizon is None:
        V = _solve(mdp, tol, pi, (pi * ops.r).sum(axis=1), False)
        return V, ops.r + gamma * ops.next(V)

    def step(V_next: Any, _: Any) -> tuple[Any, tuple[Any, Any]]:  # V_H = 0, so Q_{H-1} = r
        Q = ops.r + gamma * ops.next(V_next)
        V = (pi * Q).sum(axis=1)
        return V, (V, Q)

    _, (V, Q) = jax.lax.scan(step, jnp.zeros(mdp.n_states), length=mdp.horizon, reverse=True)
    return V, Q


def _occupancy_of(mdp: Any, pi: Any, tol: Any) -> Any:
    ops = _operators(mdp)
    if mdp.horizon is None:
        return (1.0 - mdp.gamma) * _solve(mdp, tol, pi, ops.mu0, True)

    def step(p: Any, _: Any) -> tuple[Any, Any]:
        return ops.back(p[:, None] * pi), p

    _, p = jax.lax.scan(step, ops.mu0, length=mdp.horizon)  # p_0, ..., p_{H-1}
    return (mdp.gamma ** np.arange(mdp.horizon)) @ p / _visitation_mass(mdp)


def _checked(mdp: Any, pi: Any, tol: Any) -> Any:
    _check(mdp, pi)
    check_tol(tol)
    if isinstance(pi, jax.core.Tracer) and _known_values(pi) is None:  # under jit
        if mdp.horizon is not None:  # no solve to check pi in: check it in a callback of its own

            def cb(p: np.ndarray) -> None:
                as_probabilities(np.asarray(p), "pi", action_mask=mdp.action_mask)

            jax.debug.callback(cb, pi)
    return pi


def expected_return(mdp: Any, pi: Any, *, tol: float | None = None) -> Any:
    r"""Exact J of the policy array ``pi`` (shape (S, A), float64), differentiable to every order in ``pi``.

    .. math::

        J = \mu_0^\top (I - \gamma P_\pi)^{-1} r_\pi, \qquad
        \frac{\partial J}{\partial\pi(a|s)} = \frac{d_\pi(s) Q^\pi(s, a)}{1-\gamma}
        \quad\text{(finite horizon: } \textstyle\sum_t \gamma^t p_t(s) Q_t(s, a))

    (Sutton et al. 2000, Theorem 1). ``jax.grad`` costs one more solve (the transposed system,
    same LU factors), a Hessian-vector product two more (module docstring). ``tol``: sparse
    ``P`` only.

    Examples
    --------
    >>> import numpy as np, jax, jax.numpy as jnp
    >>> jax.config.update("jax_enable_x64", True)
    >>> import pgexact.jax as pj
    >>> from pgexact.exact import pi_gradient
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    >>> pi = jnp.full((4, 3), 1 / 3)
    >>> g = jax.grad(lambda p: pj.expected_return(mdp, p))(pi)
    >>> bool(np.allclose(g, pi_gradient(mdp, np.full((4, 3), 1 / 3)), rtol=1e-12, atol=0))
    True
    """
    pi = _checked(mdp, pi, tol)
    ops = _operators(mdp)
    if mdp.horizon is None:
        return ops.mu0 @ _solve(mdp, tol, pi, (pi * ops.r).sum(axis=1), False)
    return ops.mu0 @ _value_tables(mdp, pi, tol)[0][0]


def values(mdp: Any, pi: Any, *, tol: float | None = None) -> Any:
    r"""Exact V (shape (S,), or (H, S) for a finite horizon), differentiable to every order in ``pi``.

    :math:`V = (I - \gamma P_\pi)^{-1} r_\pi`; finite horizon :math:`V_t = r_\pi + \gamma P_\pi V_{t+1}`.
    Its reverse rule is :func:`pgexact.exact.value_vjp`.
    """
    return _value_tables(mdp, _checked(mdp, pi, tol), tol)[0]


def action_values(mdp: Any, pi: Any, *, tol: float | None = None) -> Any:
    r"""Exact :math:`Q = r + \gamma P V` (shape (S, A), or (H, S, A)), differentiable to every order in ``pi``.

    Its reverse rule is :func:`pgexact.exact.value_vjp`.
    """
    return _value_tables(mdp, _checked(mdp, pi, tol), tol)[1]


def advantages(mdp: Any, pi: Any, *, tol: float | None = None) -> Any:
    r"""Exact A = Q − V (shape (S, A), or (H, S, A)), differentiable to every order in ``pi``.

    Its reverse rule is :func:`pgexact.exact.advantage_vjp`.
    """
    V, Q = _value_tables(mdp, _checked(mdp, pi, tol), tol)
    return Q - V[..., None]


def occupancy(mdp: Any, pi: Any, *, tol: float | None = None) -> Any:
    r"""Normalized occupancy :math:`d_\pi` (shape (S,)), differentiable to every order in ``pi``.

    :math:`d_\pi = (1-\gamma) (I - \gamma P_\pi)^{-\top} \mu_0`; finite horizon
    :math:`\sum_{t<H} \gamma^t p_t / \sum_{t<H} \gamma^t` with :math:`p_{t+1} = P_\pi^\top p_t`.
    Its reverse rule is :func:`pgexact.exact.occupancy_vjp`.
    """
    return _occupancy_of(mdp, _checked(mdp, pi, tol), tol)


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
