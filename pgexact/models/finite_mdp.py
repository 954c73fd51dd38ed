"""Finite Markov decision processes: ``P[s, a, s']``, ``r[s, a]``, ``mu0[s]``, ``gamma``, ``horizon``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse

from .._validation import (
    PROBABILITY_ATOL,
    ReadOnlyOnCopy,
    as_float_array,
    as_probabilities,
    check_action_mask,
    check_distribution,
    check_gamma,
    check_horizon,
    format_index,
)

__all__ = ["FiniteMDP", "validate_policy_matrix"]


@dataclass(frozen=True, eq=False)
class FiniteMDP(ReadOnlyOnCopy):
    r"""A finite MDP, discounted with infinite horizon or with a finite horizon.

    Parameters
    ----------
    P : array_like, shape (S, A, S), or scipy.sparse matrix, shape (S*A, S)
        Transition probabilities ``P[s, a, s'] = Pr(s_{t+1} = s' | s_t = s, a_t = a)``.
        Entries ``>= 0``; each ``P[s, a, :]`` sums to 1 within ``1e-9``.
        A ``scipy.sparse`` matrix (any format) holds ``P(.|s, a)`` in row ``s*A + a``; it is
        stored as a canonical ``scipy.sparse.csr_array`` and the exact core then solves its
        linear systems with Krylov methods (see :func:`pgexact.evaluate`, argument ``tol``).
    r : array_like, shape (S, A) or (S, A, S)
        Expected reward ``r[s, a]``. A reward ``r[s, a, s']`` that depends on the next state is
        reduced to its expectation :math:`r(s, a) = \sum_{s'} P(s'|s, a) r(s, a, s')`.
        Finite entries only. With a sparse ``P`` only the shape (S, A) is accepted.
    mu0 : array_like, shape (S,)
        Initial state distribution.
    gamma : float
        Discount factor: ``0 <= gamma < 1`` when ``horizon is None``, ``0 <= gamma <= 1`` otherwise.
    horizon : int or None
        ``None`` for the discounted infinite-horizon objective
        :math:`J = E[\sum_{t \ge 0} \gamma^t r(s_t, a_t)]`; a positive integer ``H`` for
        :math:`J = E[\sum_{t < H} \gamma^t r(s_t, a_t)]`.
    action_mask : array_like of bool, shape (S, A), optional
        Feasible actions (``True``); every state needs one. Every function of a policy on this
        MDP refuses probability on an infeasible action (naming the first such (s, a)); build
        parametrized policies with ``action_mask=mdp.action_mask``. For infeasible actions the
        reward may be ``-inf`` (QuantEcon's convention) and the row ``P[s, a, :]`` may be all
        zero; both are ignored and stored as a zero-reward self-loop, so ``Q`` and ``A`` at an
        infeasible action are those of that placeholder, not of a real action. Without a mask
        every reward must be finite.

    Notes
    -----
    A *terminal* state is an absorbing, zero-reward state (``P[s, a, s] = 1`` and ``r[s, a] = 0``
    for every action); :attr:`terminal` marks them. The builders in :mod:`pgexact.mdps` model
    episode ends that way, so every episode is a trajectory of fixed length in the same chain.
    Arrays are copied at construction and made read-only.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import FiniteMDP
    >>> P = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])
    >>> mdp = FiniteMDP(P, r=[[0.0, 1.0], [0.0, 0.0]], mu0=[1.0, 0.0], gamma=0.9)
    >>> mdp.n_states, mdp.n_actions, bool(mdp.terminal[1])
    (2, 2, True)
    """

    P: np.ndarray
    r: np.ndarray
    mu0: np.ndarray
    gamma: float
    horizon: int | None = None
    action_mask: np.ndarray | None = None
    terminal: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if scipy.sparse.issparse(self.P):  # P of shape (S*A, S)
            self._init_sparse()
            return
        P = as_float_array("P", self.P, ndim=3)
        S, A, S2 = P.shape
        if S == 0 or A == 0:
            raise ValueError(f"P must have at least one state and one action, got shape {P.shape}")
        if S2 != S:
            raise ValueError(f"P must have shape (S, A, S), got {P.shape} (last axis {S2} != S={S})")
        mask = check_action_mask(self.action_mask, S, A)
        if mask is not None:  # all-zero rows of infeasible actions become self-loops
            empty = ~mask & np.all(P == 0.0, axis=2)
            s_idx, a_idx = np.nonzero(empty)
            P[s_idx, a_idx, s_idx] = 1.0
        check_distribution("P", P)
        r = as_float_array("r", self.r, allow_nonfinite=True)
        if r.shape == (S, A, S):
            _check_reward(r, None)
            r = np.einsum("sat,sat->sa", P, r)
        elif r.shape != (S, A):
            raise ValueError(f"r must have shape (S, A)=({S}, {A}) or (S, A, S), got {r.shape}")
        else:
            r = _check_reward(r, mask)
        mu0 = as_float_array("mu0", self.mu0, shape=(S,))
        check_distribution("mu0", mu0)
        horizon = check_horizon(self.horizon)
        gamma = check_gamma(self.gamma, horizon)
        _check_scale(r, gamma, horizon)
        diag = P[np.arange(S), :, np.arange(S)]  # (S, A): P[s, a, s]
        self._store(P, r, mu0, gamma, horizon, mask, diag)

    def _store(
        self,
        P: Any,
        r: np.ndarray,
        mu0: np.ndarray,
        gamma: float,
        horizon: int | None,
        mask: np.ndarray | None,
        diag: np.ndarray,
    ) -> None:
        """Set the validated fields. ``diag[s, a]`` is ``P[s, a, s]``; a state is terminal when
        every feasible action is a zero-reward self-loop."""
        if mask is None:
            terminal = np.all(diag == 1.0, axis=1) & np.all(r == 0.0, axis=1)
        else:
            terminal = np.all((diag == 1.0) | ~mask, axis=1) & np.all((r == 0.0) | ~mask, axis=1)
        arrays = (P.data, P.indices, P.indptr) if scipy.sparse.issparse(P) else (P,)
        for arr in arrays + (r, mu0, terminal):
            arr.flags.writeable = False
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "r", r)
        object.__setattr__(self, "mu0", mu0)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "horizon", horizon)
        object.__setattr__(self, "action_mask", mask)
        object.__setattr__(self, "terminal", terminal)

    def _init_sparse(self) -> None:
        """Validate and store a sparse ``P`` of shape (S*A, S) (vectorized over all rows)."""
        P, S, A = _as_sparse_transitions(self.P)
        mask = check_action_mask(self.action_mask, S, A)
        r = as_float_array("r", self.r, allow_nonfinite=True)
        if r.shape != (S, A):
            raise ValueError(
                f"r must have shape (S, A)=({S}, {A}) when P is sparse (shape (S*A, S)), got {r.shape}"
            )
        r = _check_reward(r, mask)
        mu0 = as_float_array("mu0", self.mu0, shape=(S,))
        check_distribution("mu0", mu0)
        horizon = check_horizon(self.horizon)
        gamma = check_gamma(self.gamma, horizon)
        _check_scale(r, gamma, horizon)
        # P[s, a, s] == 1 exactly: look only at stored entries equal to 1 (rare), find their rows.
        ones = np.flatnonzero(P.data == 1.0)
        rows = np.searchsorted(P.indptr, ones, side="right") - 1
        diag = np.zeros(S * A, dtype=bool)
        diag[rows[P.indices[ones] == rows // A]] = True
        self._store(P, r, mu0, gamma, horizon, mask, diag.reshape(S, A).astype(float))

    # ------------------------------------------------------------------ sizes
    @property
    def n_states(self) -> int:
        """Number of states S."""
        if self.P.ndim == 2:  # sparse, shape (S*A, S)
            return int(self.P.shape[1])
        return int(self.P.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions A."""
        if self.P.ndim == 2:  # sparse, shape (S*A, S)
            return int(self.P.shape[0] // self.P.shape[1])
        return int(self.P.shape[1])

    @property
    def is_sparse(self) -> bool:
        """True if ``P`` is a ``scipy.sparse.csr_array`` of shape (S*A, S) (row ``s*A + a``)."""
        return self.P.ndim == 2

    @property
    def discounted(self) -> bool:
        """True for the infinite-horizon discounted objective (``horizon is None``)."""
        return self.horizon is None

    # ------------------------------------------------------- linear operators
    def policy_transition(self, pi: np.ndarray) -> np.ndarray:
        r"""State-to-state transition matrix under ``pi``: :math:`P_\pi[s, s'] = \sum_a \pi(a|s) P(s'|s, a)`.

        Parameters
        ----------
        pi : array_like, shape (S, A), or tuple (policy, theta)
            A policy matrix (checked as by :func:`pgexact.policies.as_probabilities`).

        Returns
        -------
        numpy.ndarray, shape (S, S)
            A ``scipy.sparse.csr_array`` of shape (S, S) when ``P`` is sparse.
        """
        return self._policy_transition(self._policy(pi))

    def _policy_transition(self, pi: np.ndarray) -> np.ndarray:
        """:meth:`policy_transition` of an already checked policy matrix (the exact core's kernel)."""
        if self.P.ndim == 2:
            return _sparse_policy_transition(self.P, pi, canonical=True)
        return np.matmul(pi[:, None, :], self.P)[:, 0, :]

    def policy_reward(self, pi: np.ndarray) -> np.ndarray:
        r"""Expected one-step reward under ``pi``: :math:`r_\pi[s] = \sum_a \pi(a|s) r(s, a)`, shape (S,)."""
        return self._policy_reward(self._policy(pi))

    def _policy_reward(self, pi: np.ndarray) -> np.ndarray:
        """:meth:`policy_reward` of an already checked policy matrix (the exact core's kernel)."""
        return (pi * self.r).sum(axis=1)

    def _policy(self, pi: Any) -> np.ndarray:
        """``pi`` checked for this model (fast path: a float64 (S, A) array of finite rows summing to 1)."""
        shape = (self.n_states, self.n_actions)
        if type(pi) is np.ndarray and pi.dtype == np.float64 and pi.shape == shape and self.action_mask is None:
            sums = pi.sum(axis=1)
            if (pi >= 0).all() and (np.abs(sums - 1.0) <= PROBABILITY_ATOL).all():
                return pi
        return check_pi(self, pi)

    def expected_next(self, values: np.ndarray) -> np.ndarray:
        r""":math:`(P v)[s, a] = \sum_{s'} P(s'|s, a) v(s')` for ``values`` of shape (S,); returns (S, A).

        ``values`` may also have shape (S, k); the result then has shape (S, A, k). Entries must be
        finite (``ValueError`` naming the first that is not).
        """
        S, A = self.n_states, self.n_actions
        if not (type(values) is np.ndarray and values.dtype == np.float64 and values.ndim in (1, 2)
                and values.shape[0] == S and np.isfinite(values).all()):
            values = as_float_array("values", values)
            if values.ndim not in (1, 2) or values.shape[0] != S:
                raise ValueError(f"values must have shape (S,) or (S, k) with S={S}, got {values.shape}")
        return self._expected_next(values)

    def _expected_next(self, values: np.ndarray) -> np.ndarray:
        """:meth:`expected_next` of an already checked float64 array (the exact core's kernel)."""
        S, A = self.n_states, self.n_actions
        if self.P.ndim == 2:  # sparse, already (S*A, S)
            out = self.P @ values
        else:
            # Batched matmul over s (numpy's loop), not one BLAS gemv on the (S*A, S) view: a
            # threaded OpenBLAS gemv over the whole of P was measured to slow the *next* LU
            # factorization by ~80% (S = 2000, A = 8), which dominates evaluate().
            return self.P @ values
        return out.reshape((S, A) + values.shape[1:])

    def with_horizon(self, horizon: int | None, gamma: float | None = None) -> "FiniteMDP":
        """The same dynamics and rewards with another horizon (and optionally another gamma)."""
        return FiniteMDP(
            self.P, self.r, self.mu0, self.gamma if gamma is None else gamma, horizon,
            action_mask=self.action_mask,
        )


def _sparse_policy_transition(
    P: scipy.sparse.csr_array, pi: np.ndarray, canonical: bool = False
) -> scipy.sparse.csr_array:
    r""":math:`P_\pi` (S, S) from a canonical CSR ``P`` of shape (S*A, S).

    Rows ``s*A .. s*A + A - 1`` of ``P`` are contiguous, so scaling every stored entry of row
    ``s*A + a`` by ``pi[s, a]`` and regrouping the rows ``A`` at a time (``indptr[::A]``) is
    :math:`\sum_a \pi(a|s) P(\cdot|s, a)`: O(nnz) work, no sparse product. With
    ``canonical=False`` the result shares ``P``'s (read-only) column indices and keeps duplicate
    entries, which matrix-vector products sum (internal use: never mutate it); with
    ``canonical=True`` it owns its arrays and duplicates are summed.
    """
    S = P.shape[1]
    A = P.shape[0] // S
    data = P.data * np.repeat(pi.reshape(-1), np.diff(P.indptr))
    indptr = np.ascontiguousarray(P.indptr[::A])
    if not canonical:
        return scipy.sparse.csr_array((data, P.indices, indptr), shape=(S, S))
    P_pi = scipy.sparse.csr_array((data, P.indices.copy(), indptr), shape=(S, S))
    P_pi.sum_duplicates()
    return P_pi


def _sparse_location(P: scipy.sparse.csr_array, k: int, A: int) -> str:
    """``[row 12 = (s=3, a=0), 7]`` for the k-th stored entry of ``P``."""
    row = int(np.searchsorted(P.indptr, k, side="right") - 1)
    return f"[row {row} = (s={row // A}, a={row % A}), {int(P.indices[k])}]"


def _as_sparse_transitions(value: Any) -> tuple[scipy.sparse.csr_array, int, int]:
    """Validate a sparse transition matrix of shape (S*A, S); return (canonical CSR copy, S, A).

    Vectorized over all rows; errors name the first offending row as ``P[row i = (s, a), ...]``.
    """
    if value.ndim != 2:
        raise ValueError(f"a sparse P must be 2-D with shape (S*A, S), got shape {value.shape}")
    nrows, S = (int(n) for n in value.shape)
    if S == 0 or nrows == 0:
        raise ValueError(f"P must have at least one state and one action, got shape {value.shape}")
    if nrows % S != 0:
        raise ValueError(
            f"a sparse P must have shape (S*A, S) with row s*A + a holding P(.|s, a); got shape "
            f"{value.shape}, and {nrows} rows is not a multiple of S={S}"
        )
    A = nrows // S
    kind = np.dtype(value.dtype).kind
    if kind not in "iuf":
        what = "booleans" if kind == "b" else f"dtype {value.dtype}"
        raise TypeError(f"P must be a sparse matrix of real numbers, got {what}")
    P = scipy.sparse.csr_array(value, dtype=np.float64, copy=True)
    P.sum_duplicates()  # canonical: sorted column indices, no duplicates
    bad = ~np.isfinite(P.data)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"P{_sparse_location(P, k, A)} is {P.data[k]}, expected a finite number")
    neg = P.data < 0
    if neg.any():
        k = int(np.argmax(neg))
        raise ValueError(f"P{_sparse_location(P, k, A)} is {P.data[k]:.6g}, expected >= 0")
    P.eliminate_zeros()
    sums = np.asarray(P.sum(axis=1)).reshape(-1)
    off = np.abs(sums - 1.0) > PROBABILITY_ATOL
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(
            f"P[row {i} = (s={i // A}, a={i % A}), :] sums to {sums[i]:.12g}, expected 1 "
            f"(tolerance {PROBABILITY_ATOL:g})"
        )
    return P, S, A


#: Largest value of max |r| K^2 accepted, K = 1/(1 - gamma) or H (see _check_scale).
_SCALE_LIMIT = 1e300


def _check_scale(r: np.ndarray, gamma: float, horizon: int | None) -> None:
    r"""Refuse rewards whose values or gradients would overflow float64.

    With :math:`R = \max|r|` and the horizon factor :math:`K = 1/(1-\gamma)` (or H), every
    value is at most :math:`R K` and every softmax policy-gradient entry (per unit score) at
    most :math:`2 R K^2`; both stay below :data:`_SCALE_LIMIT` when :math:`R K^2` does.
    """
    R = float(np.max(np.abs(r)))
    K = float(horizon) if horizon is not None else 1.0 / (1.0 - gamma)
    if R * K * K > _SCALE_LIMIT:  # Python floats: an overflow is inf, no warning
        raise ValueError(
            f"r is too large for float64 closed forms: max |r| = {R:.3g} with the horizon factor "
            f"K = {K:.3g} ({'H' if horizon is not None else '1/(1 - gamma)'}) gives values up to "
            f"max |r| K and gradients up to max |r| K^2 = {R * K * K:.3g}, beyond {_SCALE_LIMIT:g}; "
            "rescale r"
        )


def _check_reward(r: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Finite rewards, except ``-inf`` at infeasible actions (then stored as 0)."""
    bad = ~np.isfinite(r)
    if mask is not None:
        allowed = (r == -np.inf) & ~mask
        bad &= ~allowed
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        hint = (
            "" if r[idx] != -np.inf else
            " (-inf marks an infeasible action only together with action_mask[s, a] = False)"
        )
        raise ValueError(f"r{format_index(idx)} is {r[idx]}, expected a finite number{hint}")
    if mask is not None:
        r[~mask] = 0.0
    return r


def validate_policy_matrix(
    pi: Any,
    n_states: int,
    n_actions: int,
    name: str = "pi",
    atol: float = PROBABILITY_ATOL,
    action_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Check that ``pi`` is an (S, A) matrix of probability rows and return it as float64.

    ``pi`` may also be a pair ``(policy, theta)``, resolved as by
    :func:`pgexact.policies.as_probabilities`.

    Raises ``ValueError`` naming the first row that is not a distribution, or the first
    ``(s, a)`` where ``pi`` puts mass on an action that ``action_mask`` marks infeasible.
    """
    return as_probabilities(
        pi, name, n_states=n_states, n_actions=n_actions, action_mask=action_mask, atol=atol
    )


def check_mdp(mdp: Any, name: str = "mdp") -> FiniteMDP:
    """Return ``mdp`` if it is a :class:`FiniteMDP`; ``TypeError`` naming ``name`` otherwise."""
    if not isinstance(mdp, FiniteMDP):
        raise TypeError(f"{name} must be a pgexact.FiniteMDP, got {type(mdp).__name__}")
    return mdp


def check_pi(mdp: FiniteMDP, pi: Any, name: str = "pi") -> np.ndarray:
    """The policy matrix of ``pi`` (a matrix or a ``(policy, theta)`` pair) for ``mdp``.

    Shape (S, A), rows that are distributions, no mass on an infeasible action
    (see :func:`pgexact.policies.as_probabilities`).
    """
    return as_probabilities(
        pi, name, n_states=mdp.n_states, n_actions=mdp.n_actions, action_mask=mdp.action_mask
    )
