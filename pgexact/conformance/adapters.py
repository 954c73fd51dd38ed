r"""The exact expected update of any parametrization: a surrogate for torch networks and JAX functions.

For any differentiable policy :math:`\pi_\theta` the expected update of a batch under a
convention is :math:`\sum_{s,a} w(s, a)\,\nabla_\theta\log\pi_\theta(a|s) = J^\top w`, with the
per-(s, a) weights :math:`w` of :func:`~pgexact.conformance.expected_update` (which depend on the
policy's probabilities only, not on how they are parametrized). :func:`update_surrogate` returns
the scalar

.. math::

    L(\theta) = \sum_{s,a} \operatorname{sg}[w(s, a)]\, \log\pi_\theta(a|s)

(``sg``: no gradient flows into the weights), so ``L.backward()`` (torch) or ``jax.grad`` of
``L`` gives the exact expected update in every parameter of the network that produced
:math:`\pi`. Terms with :math:`\pi(a|s) = 0` are left out (their weight is 0: such actions are
never taken). The weights include the entropy bonus,
:math:`\nabla H(\pi_s) = -\sum_a \pi(a|s)\log\pi(a|s)\,\nabla\log\pi(a|s)`.

Sources: the likelihood-ratio form of the update, Williams (1992), eq. 3 and Sutton et al.
(2000), Thm 1; GAE, Schulman et al. (2016), eq. 16; course notes "Policy gradient methods",
section "Neural policies". PyTorch and JAX are optional: they are imported only when a tensor
of theirs is passed (``pip install "pgexact[torch]"`` / ``"pgexact[jax]"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..models.finite_mdp import FiniteMDP, check_mdp, check_pi
from .convention import Convention
from .expected import expected_update

__all__ = ["update_surrogate", "update_weights"]


def update_weights(mdp: FiniteMDP, pi: Any, convention: Convention, *, values: Any = None,
                   batch: Any = None, method: str | None = None) -> np.ndarray:
    r"""The per-(s, a) weights :math:`w` of the expected update, from a torch or JAX policy tensor.

    Same as ``expected_update(mdp, pi, convention, ...).weights`` for a numpy ``pi``; a torch
    tensor is detached and moved to the CPU, a concrete JAX array converted.

    Parameters
    ----------
    mdp : FiniteMDP
    pi : array_like, torch.Tensor or jax.Array, shape (S, A), float64
        Action probabilities of every state.
    convention : Convention
    values, batch, method
        As in :func:`~pgexact.conformance.expected_update`.

    Returns
    -------
    numpy.ndarray, shape (S, A)

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.conformance.audit import default_mdp
    >>> mdp = default_mdp()
    >>> c = Convention(gamma=0.8, time_limit=10, n_steps=32)
    >>> w = update_weights(mdp, np.full((9, 4), 0.25), c)
    >>> w.shape
    (9, 4)
    """
    return expected_update(mdp, _numpy_pi(mdp, pi), convention, values=values, batch=batch,
                           method=method).weights.copy()


def _numpy_pi(mdp: FiniteMDP, pi: Any) -> np.ndarray:
    mdp = check_mdp(mdp)
    kind = _kind(pi)
    if kind == "torch":
        import torch

        if pi.dtype != torch.float64:
            raise TypeError(f"pi has dtype {pi.dtype}; pgexact computes in float64: build the network in "
                            "float64 (net.double())")
        pi = pi.detach().cpu().numpy()
    elif kind == "jax":
        import jax.numpy as jnp

        if jnp.dtype(pi.dtype) != jnp.float64:
            raise TypeError(f"pi has dtype {pi.dtype}; pgexact computes in float64: enable "
                            "jax.config.update('jax_enable_x64', True) and cast with .astype(jnp.float64)")
        pi = np.asarray(pi)
    return check_pi(mdp, pi, "pi")


def _kind(pi: Any) -> str:
    module = type(pi).__module__.split(".")[0]
    if module == "torch":
        return "torch"
    if module in ("jax", "jaxlib"):
        return "jax"
    return "numpy"


def update_surrogate(mdp: FiniteMDP, pi: Any, convention: Convention, *, values: Any = None,
                     batch: Any = None, method: str | None = None) -> Any:
    r"""A scalar whose gradient in any parameters of ``pi`` is the exact expected update.

    .. math::

        L = \sum_{s,a:\ \pi(a|s) > 0} \operatorname{sg}[w(s,a)]\,\log\pi_\theta(a|s),\qquad
        \nabla_\theta L = \sum_{s,a} w(s,a)\,\nabla_\theta \log\pi_\theta(a|s) = J^\top w

    with :math:`w` the weights of :func:`~pgexact.conformance.expected_update` at the current
    probabilities (computed exactly, no sampling). For a tabular softmax the gradient in the
    logits is ``expected_update(mdp, pi, convention).update``. The value of :math:`L` itself
    has no meaning; only its gradient does.

    Parameters
    ----------
    mdp : FiniteMDP
    pi : torch.Tensor or jax.Array, shape (S, A), float64
        The policy's probabilities at every state, as produced by the network (keep the graph:
        torch autograd, or a traced JAX value inside ``jax.grad`` / ``jax.jit``). Under
        ``jax.jit`` the weights are computed on the host by ``jax.pure_callback`` and the rows of
        ``pi`` are validated there.
    convention : Convention
    values : array_like, shape (S,), optional
        The frozen critic (default: the exact :math:`V^\pi`).
    batch, method
        As in :func:`~pgexact.conformance.expected_update`.

    Returns
    -------
    torch.Tensor or jax.Array
        A 0-d tensor of ``pi``'s library (torch: on ``pi``'s device).

    Examples
    --------
    A network that is exactly a logits table gives the tabular expected update:

    >>> import numpy as np, torch
    >>> from pgexact.conformance import expected_update
    >>> from pgexact.conformance.audit import default_mdp, default_logits
    >>> mdp = default_mdp()
    >>> c = Convention(gamma=0.8, time_limit=10, n_envs=16, n_steps=32, lam=0.95)
    >>> theta = torch.tensor(default_logits(9, 4), requires_grad=True)
    >>> update_surrogate(mdp, torch.softmax(theta, dim=1), c).backward()
    >>> e = expected_update(mdp, torch.softmax(theta, dim=1).detach().numpy(), c)
    >>> bool(np.allclose(theta.grad.numpy(), e.update, rtol=0, atol=1e-15))
    True
    """
    kind = _kind(pi)
    if kind == "torch":
        return _torch_surrogate(mdp, pi, convention, values, batch, method)
    if kind == "jax":
        return _jax_surrogate(mdp, pi, convention, values, batch, method)
    raise TypeError(f"pi must be a torch.Tensor or a JAX array of shape (S, A), got {type(pi).__name__} "
                    "(for a numpy matrix or (policy, theta) use expected_update directly)")


def _torch_surrogate(mdp, pi, convention, values, batch, method):
    import torch

    W = update_weights(mdp, pi, convention, values=values, batch=batch, method=method)
    p = pi.detach().cpu().numpy()
    pos = torch.as_tensor(p > 0, device=pi.device)
    w = torch.as_tensor(W, dtype=torch.float64, device=pi.device)
    safe = torch.where(pos, pi, torch.ones_like(pi))  # no log 0 in the graph: its gradient would be 0·inf
    return (w * torch.log(safe)).sum()


def _jax_surrogate(mdp, pi, convention, values, batch, method):
    import jax
    import jax.numpy as jnp

    if not jax.config.jax_enable_x64:
        raise RuntimeError("pgexact computes in float64 and JAX is in float32 mode: call "
                           "jax.config.update('jax_enable_x64', True) before creating arrays")
    mdp = check_mdp(mdp)
    if tuple(pi.shape) != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"pi must have shape (S, A)=({mdp.n_states}, {mdp.n_actions}), got {tuple(pi.shape)}")
    if jnp.dtype(pi.dtype) != jnp.float64:
        raise TypeError(f"pi has dtype {pi.dtype}; pgexact computes in float64: cast it with .astype(jnp.float64)")
    if not isinstance(pi, jax.core.Tracer):  # concrete: validate now (traced: inside the callback)
        check_pi(mdp, np.asarray(pi), "pi")
    frozen = jax.lax.stop_gradient(pi)

    def weights(p: np.ndarray) -> np.ndarray:
        return expected_update(mdp, check_pi(mdp, np.asarray(p), "pi"), convention, values=values,
                               batch=batch, method=method).weights.copy()

    w = jax.pure_callback(weights, jax.ShapeDtypeStruct(pi.shape, jnp.float64), frozen,
                          vmap_method="sequential")
    safe = jnp.where(frozen > 0, pi, 1.0)  # no log 0 in the graph
    return jnp.sum(w * jnp.log(safe))
