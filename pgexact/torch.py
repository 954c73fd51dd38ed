r"""PyTorch adapter: exact J, V, Q, A and occupancy as differentiable functions of a policy tensor.

``expected_return(mdp, pi)`` takes the (S, A) tensor of action probabilities a network outputs
for every state of a finite MDP and returns the exact J as a 0-d tensor, differentiable to every
order in ``pi``: ``expected_return(mdp, net(obs)).backward()`` fills every parameter's ``.grad``
with the exact policy gradient :math:`\nabla_\theta J`, and ``create_graph=True``,
``torch.autograd.functional.hessian`` / ``hvp`` and ``torch.func.hessian`` give the exact
Hessian (Hessian-vector products) of J in the network's parameters.

The values are written with two kinds of exact primitives, everything else being ordinary torch
operations (:math:`r_\pi = \sum_a \pi r`, :math:`J = \mu_0^\top V`, :math:`Q = r + \gamma P V`,
:math:`A = Q - V`, the finite-horizon recursions):

- the linear solves :math:`x = M_\pi^{-1} b` and :math:`y = M_\pi^{-\top} b` with
  :math:`M_\pi = I - \gamma P_\pi`, computed in numpy (LU, or Krylov for a sparse ``P``) and
  differentiated implicitly, never through the solver:

  .. math::

      \mathrm{d}x = M_\pi^{-1}\big(\mathrm{d}b + \gamma\, P_{\mathrm{d}\pi}\, x\big), \qquad
      \mathrm{d}y = M_\pi^{-\top}\big(\mathrm{d}b + \gamma\, P_{\mathrm{d}\pi}^\top y\big),

  with :math:`P_{u}[s, s'] = \sum_a u(s, a) P(s'|s, a)`; the reverse rules are their adjoints
  (one solve with the other matrix), themselves written with the same primitives, so
  derivatives of every order are exact;
- the products :math:`x \mapsto P x` (shape (S, A)) and :math:`w \mapsto P^\top w`, adjoint to
  each other.

For J this reverse rule is the policy gradient theorem in :math:`\pi`-coordinates,
:math:`\partial J/\partial\pi(a|s) = d_\pi(s) Q^\pi(s, a)/(1-\gamma)` (finite horizon
:math:`\sum_t \gamma^t p_t(s) Q_t(s, a)`; :mod:`pgexact.exact.policy_free`), and its derivative
the policy Hessian in :math:`\pi` (Furmston, Lever & Barber 2016, sec. 3). Every primitive has a
reverse rule, a forward (``jvp``) rule and a ``vmap`` rule, so ``torch.func.grad``, ``jacrev``,
``jacfwd``, ``hessian`` and ``vmap`` compose with the adapter. Computations are float64 on the
CPU; a float32 ``pi`` is refused (cast the network with ``net.double()``), and the results are
placed on ``pi``'s device. A ``pi`` without data (the ``meta`` device) is refused.

:func:`fisher_vector_product` gives the exact state-averaged Fisher-vector product of any
parametrization ``pi_fn(params)`` by one ``torch.func.jvp`` and one ``torch.func.vjp``.

Requires the optional dependency PyTorch (``pip install "pgexact[torch]"``). Source of the
formulas: Sutton et al. (2000), Theorem 1; Kakade (2002), sec. 3; the course notes'
policy-gradient chapter, section "Neural policies".

Examples
--------
>>> import torch
>>> from pgexact.mdps import gridworld
>>> import pgexact.torch as pt
>>> mdp = gridworld(3, 3, gamma=0.9)
>>> obs = torch.eye(9, dtype=torch.float64)               # one observation per state
>>> net = torch.nn.Sequential(torch.nn.Linear(9, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).double()
>>> J = pt.expected_return(mdp, torch.softmax(net(obs), dim=-1))
>>> J.backward()                                         # exact grad J in every parameter
>>> net[0].weight.grad.shape
torch.Size([16, 9])
>>> W = torch.zeros(9, 4, dtype=torch.float64)
>>> H = torch.autograd.functional.hessian(lambda W: pt.expected_return(mdp, torch.softmax(W, -1)), W)
>>> bool(torch.allclose(H, H.permute(2, 3, 0, 1), atol=1e-12))   # exact, hence symmetric
True
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "pgexact.torch needs PyTorch: pip install 'pgexact[torch]' (or a CPU build of torch)"
    ) from exc

from torch._functorch.pyfunctorch import JvpInterpreter, retrieve_all_functorch_interpreters

from .exact._krylov import check_tol
from .exact.evaluation import _visitation_mass
from .exact.evaluation import occupancy as _occupancy
from .exact.policy_free import _DiscountedSystem, _transpose_expected, fisher_pi_metric
from ._validation import as_probabilities, check_callable
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


def _check_tensor(mdp: Any, pi: Any, name: str = "pi") -> None:
    check_mdp(mdp)
    if not isinstance(pi, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (S, A), got {type(pi).__name__}")
    if pi.device.type == "meta":
        raise ValueError(
            f"{name} is on the meta device (a tensor without data); pgexact needs the values of the "
            "action probabilities: build the network on the CPU (or a GPU) and pass its output"
        )
    if pi.dtype != torch.float64:
        raise TypeError(
            f"{name} has dtype {pi.dtype}; pgexact computes in float64: build the network in "
            "float64 (net.double(), or torch.set_default_dtype(torch.float64)) so that the exact "
            "gradient is not rounded to single precision"
        )
    if tuple(pi.shape) != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"{name} must have shape (S, A)=({mdp.n_states}, {mdp.n_actions}), got {tuple(pi.shape)}"
        )


def _np(t: torch.Tensor) -> np.ndarray:
    if t._is_zerotensor():  # forward mode passes zero tangents as tensors without storage
        return np.zeros(tuple(t.shape))
    return t.detach().cpu().numpy()


def _like(arr: Any, ref: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.array(arr, dtype=np.float64), device=ref.device)


# --------------------------------------------------------------------------- primitives
_CACHE = threading.local()


def _system(mdp: Any, p: np.ndarray, tol: Any) -> _DiscountedSystem:
    r"""The factorized :math:`I - \gamma P_\pi` of ``p``, reused while the same ``(mdp, p, tol)`` comes back.

    A forward pass and its backward pass solve with the same matrix; one entry per thread.
    """
    key = getattr(_CACHE, "key", None)
    if key is not None and key[0] is mdp and key[2] == tol and np.array_equal(key[1], p):
        return _CACHE.system
    system = _DiscountedSystem(mdp, p, check_tol(tol))
    _CACHE.key, _CACHE.system = (mdp, p.copy(), tol), system
    return system


def _loop_vmap(apply: Callable[..., torch.Tensor], info: Any, in_dims: Any, *args: Any) -> Any:
    """A ``vmap`` rule: ``apply`` on each slice of the batched arguments, results stacked on dim 0."""
    moved = [a.movedim(d, 0) if d is not None else a for a, d in zip(args, in_dims)]
    outs = [
        apply(*[m[i] if d is not None else m for m, d in zip(moved, in_dims)]) for i in range(info.batch_size)
    ]
    return torch.stack(outs), 0


class _Validated(torch.autograd.Function):
    """The identity on ``pi``, whose forward checks that every row is a distribution (naming ``pi``)."""

    @staticmethod
    def forward(pi: torch.Tensor, mdp: Any) -> torch.Tensor:
        as_probabilities(_np(pi), "pi", action_mask=mdp.action_mask)
        return pi.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, None]:
        return g, None

    @staticmethod
    def jvp(ctx: Any, dpi: Any, _mdp: Any) -> Any:
        return dpi

    @staticmethod
    def vmap(info: Any, in_dims: Any, pi: torch.Tensor, mdp: Any) -> Any:
        return _loop_vmap(lambda p: _Validated.apply(p, mdp), info, in_dims[:1], pi)


class _Next(torch.autograd.Function):
    r""":math:`x \mapsto P x`, shape (S,) to (S, A): :math:`(P x)(s, a) = \sum_{s'} P(s'|s, a) x(s')`."""

    @staticmethod
    def forward(x: torch.Tensor, mdp: Any) -> torch.Tensor:
        return _like(mdp._expected_next(_np(x)), x)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.mdp = inputs[1]

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, None]:
        return _Back.apply(g, ctx.mdp), None

    @staticmethod
    def jvp(ctx: Any, dx: Any, _mdp: Any) -> Any:
        return _Next.apply(dx, ctx.mdp)

    @staticmethod
    def vmap(info: Any, in_dims: Any, x: torch.Tensor, mdp: Any) -> Any:
        return _loop_vmap(lambda v: _Next.apply(v, mdp), info, in_dims[:1], x)


class _Back(torch.autograd.Function):
    r""":math:`w \mapsto P^\top w`, shape (S, A) to (S,): :math:`(P^\top w)(s') = \sum_{s,a} w(s, a) P(s'|s, a)`."""

    @staticmethod
    def forward(w: torch.Tensor, mdp: Any) -> torch.Tensor:
        return _like(_transpose_expected(mdp, _np(w)), w)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.mdp = inputs[1]

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, None]:
        return _Next.apply(g, ctx.mdp), None

    @staticmethod
    def jvp(ctx: Any, dw: Any, _mdp: Any) -> Any:
        return _Back.apply(dw, ctx.mdp)

    @staticmethod
    def vmap(info: Any, in_dims: Any, w: torch.Tensor, mdp: Any) -> Any:
        return _loop_vmap(lambda v: _Back.apply(v, mdp), info, in_dims[:1], w)


def _refuse_nested_forward_mode() -> None:
    """Raise when forward mode is nested in forward mode (``jacfwd(jacfwd(f))``, ``jvp`` of ``jvp``).

    torch.func runs a ``jvp`` rule without recording the outer forward level on the torch
    operations inside it, so the outer tangent of the rule's result would silently be lost.
    """
    levels = [i for i in retrieve_all_functorch_interpreters() if isinstance(i, JvpInterpreter)]
    if len(levels) > 1:
        raise NotImplementedError(
            "pgexact.torch: forward mode nested in forward mode (torch.func.jacfwd of jacfwd, jvp of jvp) "
            "is not supported through the exact solves; for second derivatives use torch.func.hessian "
            "(forward over reverse), torch.func.jacrev of jacrev, or torch.autograd.functional.hessian / hvp"
        )


class _Solve(torch.autograd.Function):
    r""":math:`M_\pi^{-1} b` (``transpose=False``) or :math:`M_\pi^{-\top} b`, with :math:`M_\pi = I - \gamma P_\pi`.

    Differentiated implicitly (module docstring): the rules call :class:`_Solve`, :class:`_Next`
    and :class:`_Back` again, so they are differentiable in turn.
    """

    @staticmethod
    def forward(pi: torch.Tensor, b: torch.Tensor, mdp: Any, tol: Any, transpose: bool) -> torch.Tensor:
        system = _system(mdp, _np(pi), tol)
        rhs = _np(b)
        return _like(system.solve_t(rhs) if transpose else system.solve(rhs), b)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        pi, _b, ctx.mdp, ctx.tol, ctx.transpose = inputs
        ctx.save_for_backward(pi, output)
        ctx.save_for_forward(pi, output)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, Any, None, None, None]:
        pi, x = ctx.saved_tensors
        mdp, gamma = ctx.mdp, ctx.mdp.gamma
        gb = _Solve.apply(pi, g, mdp, ctx.tol, not ctx.transpose)
        gpi = None
        if ctx.needs_input_grad[0]:
            if ctx.transpose:  # y = M^-T b: <g, dy> = gamma <y (P M^-1 g), dpi>
                gpi = gamma * x[:, None] * _Next.apply(gb, mdp)
            else:  # x = M^-1 b: <g, dx> = gamma <(M^-T g) (P x), dpi>
                gpi = gamma * gb[:, None] * _Next.apply(x, mdp)
        return gpi, gb, None, None, None

    @staticmethod
    def jvp(ctx: Any, dpi: Any, db: Any, *_: Any) -> torch.Tensor:
        _refuse_nested_forward_mode()
        pi, x = ctx.saved_tensors
        mdp, gamma = ctx.mdp, ctx.mdp.gamma
        rhs = torch.zeros_like(x) if db is None else db
        if dpi is not None:
            if ctx.transpose:
                rhs = rhs + gamma * _Back.apply(x[:, None] * dpi, mdp)
            else:
                rhs = rhs + gamma * (dpi * _Next.apply(x, mdp)).sum(dim=1)
        return _Solve.apply(pi, rhs, mdp, ctx.tol, ctx.transpose)

    @staticmethod
    def vmap(info: Any, in_dims: Any, pi: torch.Tensor, b: torch.Tensor, mdp: Any, tol: Any, transpose: bool) -> Any:
        return _loop_vmap(lambda p, v: _Solve.apply(p, v, mdp, tol, transpose), info, in_dims[:2], pi, b)


# --------------------------------------------------------------------------- the values
def _constant(arr: np.ndarray, ref: torch.Tensor) -> torch.Tensor:
    """A copy of the model's (read-only) array on ``ref``'s device."""
    return torch.from_numpy(np.array(arr, dtype=np.float64)).to(ref.device)


def _value_tables(mdp: Any, pi: torch.Tensor, tol: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(V, Q)``: discounted (S,), (S, A); finite horizon (H, S), (H, S, A)."""
    r = _constant(mdp.r, pi)
    gamma = mdp.gamma
    if mdp.horizon is None:
        V = _Solve.apply(pi, (pi * r).sum(dim=1), mdp, tol, False)
        return V, r + gamma * _Next.apply(V, mdp)
    Vs, Qs = [], []
    for t in range(mdp.horizon - 1, -1, -1):
        Q = r if not Vs else r + gamma * _Next.apply(Vs[-1], mdp)
        Qs.append(Q)
        Vs.append((pi * Q).sum(dim=1))
    return torch.stack(Vs[::-1]), torch.stack(Qs[::-1])


def _occupancy_of(mdp: Any, pi: torch.Tensor, tol: Any) -> torch.Tensor:
    mu0 = _constant(mdp.mu0, pi)
    if mdp.horizon is None:
        return (1.0 - mdp.gamma) * _Solve.apply(pi, mu0, mdp, tol, True)
    p, total = mu0, mu0
    for t in range(1, mdp.horizon):
        p = _Back.apply(p[:, None] * pi, mdp)
        total = total + mdp.gamma**t * p
    return total / _visitation_mass(mdp)


def _checked(mdp: Any, pi: Any, tol: Any) -> torch.Tensor:
    _check_tensor(mdp, pi)
    check_tol(tol)
    return _Validated.apply(pi, mdp)


def expected_return(mdp: Any, pi: torch.Tensor, *, tol: float | None = None) -> torch.Tensor:
    r"""Exact J of the policy tensor ``pi`` (shape (S, A), float64), differentiable to every order in ``pi``.

    .. math::

        J = \mu_0^\top (I - \gamma P_\pi)^{-1} r_\pi, \qquad
        \frac{\partial J}{\partial\pi(a|s)} = \frac{d_\pi(s) Q^\pi(s, a)}{1-\gamma}
        \quad\text{(finite horizon: } \textstyle\sum_t \gamma^t p_t(s) Q_t(s, a))

    (Sutton et al. 2000, Theorem 1). Forward: one solve; a backward pass: one solve with the
    transposed matrix (the same LU factors); a Hessian-vector product: two more (module
    docstring). ``tol``: sparse ``P`` only.

    Returns
    -------
    torch.Tensor
        0-d, float64, on ``pi``'s device.

    Examples
    --------
    >>> import numpy as np, torch
    >>> import pgexact.torch as pt
    >>> from pgexact.exact import pi_gradient
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    >>> pi = torch.full((4, 3), 1 / 3, dtype=torch.float64, requires_grad=True)
    >>> pt.expected_return(mdp, pi).backward()
    >>> bool(np.allclose(pi.grad.numpy(), pi_gradient(mdp, np.full((4, 3), 1 / 3)), rtol=1e-12, atol=0))
    True
    """
    pi = _checked(mdp, pi, tol)
    if mdp.horizon is None:
        V = _Solve.apply(pi, (pi * _constant(mdp.r, pi)).sum(dim=1), mdp, tol, False)
        return _constant(mdp.mu0, pi) @ V
    return _constant(mdp.mu0, pi) @ _value_tables(mdp, pi, tol)[0][0]


def values(mdp: Any, pi: torch.Tensor, *, tol: float | None = None) -> torch.Tensor:
    r"""Exact V (shape (S,), or (H, S) for a finite horizon), differentiable to every order in ``pi``.

    :math:`V = (I - \gamma P_\pi)^{-1} r_\pi`; finite horizon :math:`V_t = r_\pi + \gamma P_\pi V_{t+1}`.
    Its reverse rule is :func:`pgexact.exact.value_vjp`.
    """
    return _value_tables(mdp, _checked(mdp, pi, tol), tol)[0]


def action_values(mdp: Any, pi: torch.Tensor, *, tol: float | None = None) -> torch.Tensor:
    r"""Exact :math:`Q = r + \gamma P V` (shape (S, A), or (H, S, A)), differentiable to every order in ``pi``.

    Its reverse rule is :func:`pgexact.exact.value_vjp`.
    """
    return _value_tables(mdp, _checked(mdp, pi, tol), tol)[1]


def advantages(mdp: Any, pi: torch.Tensor, *, tol: float | None = None) -> torch.Tensor:
    r"""Exact A = Q − V (shape (S, A), or (H, S, A)), differentiable to every order in ``pi``.

    Its reverse rule is :func:`pgexact.exact.advantage_vjp`.
    """
    V, Q = _value_tables(mdp, _checked(mdp, pi, tol), tol)
    return Q - V[..., None]


def occupancy(mdp: Any, pi: torch.Tensor, *, tol: float | None = None) -> torch.Tensor:
    r"""Normalized occupancy :math:`d_\pi` (shape (S,); :func:`pgexact.occupancy`), differentiable to every order in ``pi``.

    :math:`d_\pi = (1-\gamma) (I - \gamma P_\pi)^{-\top} \mu_0`; finite horizon
    :math:`\sum_{t<H} \gamma^t p_t / \sum_{t<H} \gamma^t` with :math:`p_{t+1} = P_\pi^\top p_t`.
    Its reverse rule is :func:`pgexact.exact.occupancy_vjp`.
    """
    return _occupancy_of(mdp, _checked(mdp, pi, tol), tol)


def fisher_vector_product(
    mdp: Any, pi_fn: Callable[[Any], torch.Tensor], params: Any, v: Any, *, tol: float | None = None
) -> Any:
    r"""Exact state-averaged Fisher-vector product :math:`F(\theta) v` of the parametrization ``pi_fn``.

    .. math:: F v = J_\theta^\top\, \mathrm{diag}\!\left(\frac{d_\pi(s)}{\pi(a|s)}\right) J_\theta\, v,
        \qquad J_\theta = \partial\pi_\theta / \partial\theta

    (Kakade 2002, sec. 3; :func:`pgexact.exact.fisher_vector_product_jvp`), with
    :math:`J_\theta^\top w` by ``torch.autograd.grad`` and :math:`J_\theta v` as the derivative of
    :math:`\langle J_\theta^\top w, v\rangle` in w (reverse mode twice: no forward-mode rule of
    ``pi_fn`` needed); :math:`d_\pi` is the normalized occupancy. F is not differentiated.

    Parameters
    ----------
    mdp : FiniteMDP
    pi_fn : callable
        ``pi_fn(params) -> pi``, a float64 tensor of shape (S, A). For an ``nn.Module``:
        ``lambda p: torch.softmax(torch.func.functional_call(net, p, (obs,)), -1)``.
    params : torch.Tensor, or tuple / dict of tensors
        The point :math:`\theta`.
    v : same structure as ``params``
        The tangent vector.

    Returns
    -------
    same structure as ``params``
    """
    check_mdp(mdp)
    check_callable("pi_fn", pi_fn)
    _check_point(params, v)
    # J v and J^T w by reverse mode alone: J v is the derivative in the probe w of <J^T w, v> (J^T w is
    # linear in w). torch.func's jvp / vjp would load forward-AD decompositions and torch._dynamo on a
    # first call (seconds of CPU); F is not differentiated, so plain autograd suffices.
    tree = torch.utils._pytree
    leaves, spec = tree.tree_flatten(params)
    directions = tree.tree_flatten(v)[0]
    with torch.enable_grad():
        xs = [t.detach().requires_grad_(True) for t in leaves]
        pi = pi_fn(tree.tree_unflatten(xs, spec))
        _check_tensor(mdp, pi, name="pi_fn(params)")
        u = torch.zeros_like(pi)
        if pi.requires_grad:
            probe = torch.zeros_like(pi, requires_grad=True)
            back = torch.autograd.grad((pi * probe).sum(), xs, create_graph=True, allow_unused=True)
            pairing = sum(((b * d).sum() for b, d in zip(back, directions) if b is not None and b.requires_grad),
                          start=torch.zeros((), dtype=pi.dtype))
            if pairing.requires_grad:
                u = torch.autograd.grad(pairing, probe, retain_graph=True)[0]
    p = as_probabilities(_np(pi), "pi_fn(params)")
    w = fisher_pi_metric(p, _occupancy(mdp, p, tol=tol), _np(u), name="jvp of pi_fn along v")
    # scalar outputs only: a tensor grad_outputs makes torch import sympy on a first call (a second of CPU)
    grads = (torch.autograd.grad((pi * _like(w, pi)).sum(), xs, allow_unused=True) if pi.requires_grad
             else [None] * len(xs))
    return tree.tree_unflatten([torch.zeros_like(x) if g is None else g.detach() for g, x in zip(grads, xs)], spec)


def _check_point(params: Any, v: Any) -> None:
    """``params``: a floating tensor or a tuple / list / dict of them; ``v`` of the same structure and shapes."""
    leaves, spec = torch.utils._pytree.tree_flatten(params)
    if not leaves or not all(isinstance(t, torch.Tensor) and t.is_floating_point() for t in leaves):
        raise TypeError(
            f"params must be a floating-point torch.Tensor or a tuple / dict of them, got {type(params).__name__}"
        )
    v_leaves, v_spec = torch.utils._pytree.tree_flatten(v)
    if v_spec != spec or not all(isinstance(t, torch.Tensor) for t in v_leaves):
        raise TypeError(f"v must have the structure of params (tensors, {spec}), got {type(v).__name__}")
    for i, (t, w) in enumerate(zip(leaves, v_leaves)):
        if t.shape != w.shape or t.dtype != w.dtype:
            raise ValueError(
                f"v's leaf {i} has shape {tuple(w.shape)} and dtype {w.dtype}, expected those of params: "
                f"{tuple(t.shape)}, {t.dtype}"
            )


# --------------------------------------------------------------------------- average reward
class _FirstOrderOnly(torch.autograd.Function):
    """The identity on a backward pass's closed-form result ``g``, tied to ``pi``; differentiating it raises.

    Without it autograd (and torch.func) would treat the closed form as a constant in ``pi`` and
    return a wrong second derivative.
    """

    @staticmethod
    def forward(name: str, g: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
        return g.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.name = inputs[0]

    @staticmethod
    def _refuse(name: str) -> None:
        raise NotImplementedError(
            f"pgexact.torch.{name}: second derivatives (create_graph=True, torch.autograd.functional.hessian / "
            "hvp, torch.func.hessian, grad of grad) are not supported; its derivative is exact to first order "
            "only. For the exact second derivative of the gain use differences of pgexact.average.pi_gradient"
        )

    @staticmethod
    def backward(ctx: Any, _gg: Any) -> Any:
        _FirstOrderOnly._refuse(ctx.name)

    @staticmethod
    def jvp(ctx: Any, *_: Any) -> Any:
        _FirstOrderOnly._refuse(ctx.name)

    @staticmethod
    def vmap(info: Any, in_dims: Any, name: str, g: torch.Tensor, pi: torch.Tensor) -> Any:
        return _FirstOrderOnly.apply(name, g, pi if in_dims[2] is None else pi.select(in_dims[2], 0)), in_dims[1]


class _AverageReward(torch.autograd.Function):
    @staticmethod
    def forward(pi: torch.Tensor, mdp: Any) -> tuple[torch.Tensor, torch.Tensor]:
        from .average.evaluation import _evaluate as _average_evaluate

        ev = _average_evaluate(mdp, as_probabilities(_np(pi), "pi", action_mask=mdp.action_mask))
        return _like(ev.rho, pi), _like(ev.d[:, None] * ev.Q, pi)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(output[1], inputs[0])

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor, _gG: Any) -> tuple[Any, None]:
        G, pi = ctx.saved_tensors
        out = g * G
        if torch.is_grad_enabled() or torch._C._are_functorch_transforms_active():
            out = _FirstOrderOnly.apply("average_reward", out, pi)
        return out, None


def average_reward(mdp: Any, pi: torch.Tensor) -> torch.Tensor:
    r"""Exact gain ρ of the policy tensor ``pi`` (shape (S, A), float64, unichain), differentiable in ``pi``.

    .. math:: \rho = d_\pi^\top r_\pi, \qquad \frac{\partial\rho}{\partial\pi(a|s)} = d_\pi(s)\, Q(s, a)

    (:func:`pgexact.average.pi_gradient`; Sutton et al. 2000, Theorem 1, average-reward case).
    ``mdp``: a :class:`~pgexact.FiniteMDP` (γ ignored) or a pair ``(P, r)``.

    Returns
    -------
    torch.Tensor
        0-d, float64.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from pgexact import average
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> W = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    >>> rho = average_reward(mdp, torch.softmax(W, dim=1))
    >>> rho.backward()
    >>> theta = np.zeros(6)
    >>> from pgexact import TabularSoftmax
    >>> bool(np.allclose(W.grad.numpy().reshape(-1), average.policy_gradient(mdp, TabularSoftmax(3, 2), theta)))
    True
    """
    from .average.evaluation import as_average_model

    mdp = as_average_model(mdp)
    _check_tensor(mdp, pi)
    return _AverageReward.apply(pi, mdp)[0]
