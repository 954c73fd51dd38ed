r"""PyTorch adapter: exact J, V, Q, A and occupancy as differentiable functions of a policy tensor.

``expected_return(mdp, pi)`` takes the (S, A) tensor of action probabilities a network outputs
for every state of a finite MDP and returns the exact J as a 0-d tensor whose backward pass is
the closed form :math:`\partial J/\partial\pi(a|s) = d_\pi(s) Q^\pi(s, a)/(1-\gamma)` (or
:math:`\sum_t \gamma^t p_t(s) Q_t(s, a)` for a finite horizon) from
:mod:`pgexact.exact.policy_free`: autograd then chains it through the network, so
``expected_return(mdp, net(obs)).backward()`` fills every parameter's ``.grad`` with the exact
policy gradient :math:`\nabla_\theta J`. Nothing is differentiated through a linear solve: the
forward pass solves the Bellman system in numpy (LU, or Krylov for a sparse ``P``), the backward
pass applies the closed form. Computations are float64 on the CPU; a float32 ``pi`` is refused
(cast the network with ``net.double()``). The results are placed on ``pi``'s device.

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
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "pgexact.torch needs PyTorch: pip install 'pgexact[torch]' (or a CPU build of torch)"
    ) from exc

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
    return t.detach().cpu().numpy()


def _like(arr: Any, ref: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.array(arr, dtype=np.float64), device=ref.device)


class _ExpectedReturn(torch.autograd.Function):
    @staticmethod
    def forward(pi: torch.Tensor, mdp: Any, tol: Any) -> tuple[torch.Tensor, torch.Tensor]:
        J, G, _ = value_and_pi_gradient(mdp, _np(pi), tol=tol)
        return _like(J, pi), _like(G, pi)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(output[1])

    @staticmethod
    def backward(ctx: Any, gJ: torch.Tensor, _gG: Any) -> tuple[Any, None, None]:
        (G,) = ctx.saved_tensors
        return gJ * G, None, None


class _Evaluated(torch.autograd.Function):
    """V, Q, A or d of pi; backward by the closed-form VJPs of :mod:`pgexact.exact.policy_free`."""

    @staticmethod
    def forward(pi: torch.Tensor, mdp: Any, tol: Any, what: str) -> torch.Tensor:
        p = _np(pi)
        if what == "d":
            return _like(_occupancy(mdp, p, tol=tol), pi)
        return _like(getattr(_evaluate(mdp, p, tol=tol), what), pi)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        pi, mdp, tol, what = inputs
        ctx.mdp, ctx.tol, ctx.what = mdp, tol, what
        ctx.save_for_backward(pi)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, None, None, None]:
        (pi,) = ctx.saved_tensors
        p, gb = _np(pi), _np(g)
        mdp, tol = ctx.mdp, ctx.tol
        if ctx.what == "V":
            out = value_vjp(mdp, p, V_bar=gb, tol=tol)
        elif ctx.what == "Q":
            out = value_vjp(mdp, p, Q_bar=gb, tol=tol)
        elif ctx.what == "A":
            out = advantage_vjp(mdp, p, gb, tol=tol)
        else:
            out = occupancy_vjp(mdp, p, gb, tol=tol)
        return _like(out, pi), None, None, None


def expected_return(mdp: Any, pi: torch.Tensor, *, tol: float | None = None) -> torch.Tensor:
    r"""Exact J of the policy tensor ``pi`` (shape (S, A), float64), differentiable in ``pi``.

    .. math:: \frac{\partial J}{\partial\pi(a|s)} = \frac{d_\pi(s) Q^\pi(s, a)}{1-\gamma}
        \quad\text{(finite horizon: } \textstyle\sum_t \gamma^t p_t(s) Q_t(s, a))

    Forward: one exact evaluation (:func:`pgexact.evaluate`); backward: the product of the
    incoming gradient with that closed form (no extra solve). ``tol``: sparse ``P`` only.

    Returns
    -------
    torch.Tensor
        0-d, float64, on ``pi``'s device.
    """
    _check_tensor(mdp, pi)
    return _ExpectedReturn.apply(pi, mdp, tol)[0]


def values(mdp: Any, pi: torch.Tensor, *, tol: float | None = None) -> torch.Tensor:
    r"""Exact V (shape (S,), or (H, S) for a finite horizon), differentiable in ``pi`` (:func:`pgexact.exact.value_vjp`)."""
    _check_tensor(mdp, pi)
    return _Evaluated.apply(pi, mdp, tol, "V")


def action_values(mdp: Any, pi: torch.Tensor, *, tol: float | None = None) -> torch.Tensor:
    r"""Exact Q (shape (S, A), or (H, S, A)), differentiable in ``pi`` (:func:`pgexact.exact.value_vjp`)."""
    _check_tensor(mdp, pi)
    return _Evaluated.apply(pi, mdp, tol, "Q")


def advantages(mdp: Any, pi: torch.Tensor, *, tol: float | None = None) -> torch.Tensor:
    r"""Exact A = Q − V (shape (S, A), or (H, S, A)), differentiable in ``pi`` (:func:`pgexact.exact.advantage_vjp`)."""
    _check_tensor(mdp, pi)
    return _Evaluated.apply(pi, mdp, tol, "A")


def occupancy(mdp: Any, pi: torch.Tensor, *, tol: float | None = None) -> torch.Tensor:
    r"""Normalized occupancy :math:`d_\pi` (shape (S,); :func:`pgexact.occupancy`), differentiable in ``pi`` (:func:`pgexact.exact.occupancy_vjp`)."""
    _check_tensor(mdp, pi)
    return _Evaluated.apply(pi, mdp, tol, "d")


def fisher_vector_product(
    mdp: Any, pi_fn: Callable[[Any], torch.Tensor], params: Any, v: Any, *, tol: float | None = None
) -> Any:
    r"""Exact state-averaged Fisher-vector product :math:`F(\theta) v` of the parametrization ``pi_fn``.

    .. math:: F v = J_\theta^\top\, \mathrm{diag}\!\left(\frac{d_\pi(s)}{\pi(a|s)}\right) J_\theta\, v,
        \qquad J_\theta = \partial\pi_\theta / \partial\theta

    (Kakade 2002, sec. 3; :func:`pgexact.exact.fisher_vector_product_jvp`), with
    :math:`J_\theta v` by ``torch.func.jvp`` and :math:`J_\theta^\top w` by ``torch.func.vjp``;
    :math:`d_\pi` is the normalized occupancy. F is not differentiated.

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
    pi, u = torch.func.jvp(pi_fn, (params,), (v,))
    _check_tensor(mdp, pi, name="pi_fn(params)")
    _, vjp_fn = torch.func.vjp(pi_fn, params)
    p = as_probabilities(_np(pi), "pi_fn(params)")
    w = fisher_pi_metric(p, _occupancy(mdp, p, tol=tol), _np(u), name="jvp of pi_fn along v")
    return vjp_fn(_like(w, pi))[0]


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
class _AverageReward(torch.autograd.Function):
    @staticmethod
    def forward(pi: torch.Tensor, mdp: Any) -> tuple[torch.Tensor, torch.Tensor]:
        from .average.evaluation import _evaluate as _average_evaluate

        ev = _average_evaluate(mdp, as_probabilities(_np(pi), "pi", action_mask=mdp.action_mask))
        return _like(ev.rho, pi), _like(ev.d[:, None] * ev.Q, pi)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(output[1])

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor, _gG: Any) -> tuple[Any, None]:
        (G,) = ctx.saved_tensors
        return g * G, None


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
