r"""The exact expected update of one batch of a library's rollout buffer, from the chain over (time in episode, state).

Each of the ``n_envs`` environments runs one continuous stream: reset to :math:`s_0 \sim \mu_0`
at the start and after every episode end (entering a terminal state, or ``time_limit`` steps).
Batch ``b`` holds the stream steps :math:`t = b\,n, \dots, (b+1)\,n - 1` (``n = n_steps``) of
every environment. The environments are independent copies, so the expected mean over the
:math:`n_{\text{envs}}\, n` rows equals the expected mean over the ``n`` rows of one environment:

.. math::

    \mathbb{E}[\text{update}] = \sum_{s,a} w(s, a)\, \nabla_\theta \log\pi_\theta(a|s), \qquad
    w(s, a) = \frac{1}{n}\sum_{j=0}^{n-1} \mathbb{E}\bigl[\omega_j\, 1\{s_j = s, a_j = a\}\,
      (\hat A_j - c_{\text{ent}} \log\pi(a|s))\bigr]

(the entropy term uses :math:`\nabla H(\pi_s) = -\sum_a \pi(a|s)\log\pi(a|s)\,\nabla\log\pi(a|s)`),
so for tabular logits ``update[s] = w[s] - pi[s] * w[s].sum()``. Two exact computations:

**Renewal** (``truncation`` in bootstrap/terminate/reset_obs, ``autoreset`` same_step or
disabled). With :math:`q_0 = \mu_0`, :math:`q_{k+1} = (q_k P_\pi) \odot 1_{\neg\text{terminal}}`
(the sub-stochastic marginal of a fresh episode at time k), episode-length law
:math:`f_k = |q_{k-1}| - |q_k|` (k < T), :math:`f_T = |q_{T-1}|`, and the renewal sequence
:math:`u_0 = 1`, :math:`u_t = \sum_{l=1}^{\min(t,T)} f_l u_{t-l}` (probability that an episode
starts at stream step t), :math:`\Pr(k_t = k, s_t = s) = u_{t-k}\, q_k(s)`. Given (k, s, a) at
row j, the expected advantage depends only on the number of steps
:math:`m = \min(n - j, T - k)` left before the buffer's end or the truncation, and on which comes
first (a tie is a truncation: the row is flagged):

.. math::

    h_1^X = r + \beta^X - V, \qquad
    h_m^X = r + \gamma P\tilde V - V + \gamma\lambda\, P\bigl(1_{\neg\text{term}}\, \textstyle\sum_{a'}\pi(a'|\cdot)\, h^X_{m-1}(\cdot, a')\bigr),

with :math:`\tilde V = V\,1_{\neg\text{terminal}}` and the last step's bootstrap
:math:`\beta = \gamma P\tilde V` (a bootstrapped truncation or buffer end),
:math:`\beta = 0` (a truncation treated as termination, or ``bootstrap_end=False``) or
:math:`\beta = \gamma\, P 1_{\neg\text{terminal}}\; \mu_0^\top V` (``"reset_obs"``). The row
occupancies :math:`c_m(s) = \sum_{j,k:\,m_{jk}=m} \omega_k u_{bn+j-k} q_k(s)` are summed on the
fly: a truncation-type term per k and one (m × k) @ (k × S) product for the buffer-end type.
Cost O(T · nnz(P) + min(n, T) · T · S), memory O(T · S).

**Chain** (every convention). The augmented chain over (k, s) — plus, under next-step
autoreset, the reset rows (L, s) holding the final observation of an episode of length L —
is propagated forward from :math:`(0, \mu_0)` for the row occupancies :math:`\rho_j`, and the
expected advantages :math:`G^{(m)}(z, a)` of a row with m rows left in the buffer are computed
backward over m (:math:`G^{(1)}` the last row's δ,
:math:`G^{(m)} = \mathbb{E}[\delta] + \gamma\lambda\, \mathbb{E}[1\{\text{no cut}\}\, \pi\!\cdot\! G^{(m-1)}(z')]`).
Cost O(n · T · nnz(P)) per batch: for small problems and for the cases the renewal does not cover.

``batch=None`` gives the long-run average over batches (the Cesàro limit, the stationary law
of the chain :math:`\Pr(k, s) = q_k(s) / \mathbb{E}[\text{cycle length}]`), which is the limit
of batch ``b`` as b grows whenever the episode-length law is aperiodic.

Sources: GAE, Schulman et al. 2016, eq. 16; the renewal equation, Feller 1968, vol. 1,
ch. XIII; course notes "Policy gradient methods", sections "Advantage estimation" and "The
policy gradient theorem". Not covered: the exact covariance of a batch's update (the tests
estimate it from the data by batch means), and the exact expectation of a normalized update
(its direction is checked by :func:`~pgexact.conformance.stats.parallel_test`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .._validation import as_float_array, check_memory
from ..exact.evaluation import _evaluate
from ..models.finite_mdp import FiniteMDP, check_mdp, check_pi
from .convention import Convention

__all__ = ["ExpectedUpdate", "expected_update"]

#: Largest n_steps * time_limit * nnz(P) the chain method runs (about 10 s of numpy).
_CHAIN_WORK_LIMIT = 3e9


@dataclass(frozen=True, eq=False)
class ExpectedUpdate:
    r"""The exact expectation of one batch's update.

    Attributes
    ----------
    update : numpy.ndarray
        Shape (S, A) (ascent direction in the logits) for a policy matrix, (n_params,) for a
        ``(policy, theta)`` pair: :math:`\sum_{s,a} w(s,a)\nabla\log\pi(a|s)`.
    weights : numpy.ndarray, shape (S, A)
        The per-(s, a) weights w.
    state_weights : numpy.ndarray, shape (S,)
        :math:`\frac1n \sum_j \mathbb{E}[\omega_j 1\{s_j = s\}]`, the weight of state s in the
        update (sums to 1 under uniform weighting).
    batch : None, int or tuple of int
        The batch (None: the long-run average; a tuple: the mean over those batches).
    convention : Convention
    method : str
        ``"renewal"`` or ``"chain"``.
    """

    update: np.ndarray
    weights: np.ndarray
    state_weights: np.ndarray
    batch: Any
    convention: Convention
    method: str

    def __post_init__(self) -> None:
        for name in ("update", "weights", "state_weights"):
            getattr(self, name).flags.writeable = False


def _check_values(mdp: FiniteMDP, pi: np.ndarray, values: Any) -> np.ndarray:
    if values is None:
        if mdp.horizon is not None:
            raise ValueError("values is None and the mdp has a finite horizon: pass values, shape (S,) "
                             "(the time limit of a conformance run is convention.time_limit)")
        return np.asarray(_evaluate(mdp, pi).V, dtype=np.float64)
    v = as_float_array("values", values)
    if v.shape != (mdp.n_states,):
        raise ValueError(f"values must have shape (S,) = ({mdp.n_states},), got {v.shape}")
    return v


def _check_batch(batch: Any) -> tuple[int, ...] | None:
    if batch is None:
        return None
    if isinstance(batch, (int, np.integer)) and not isinstance(batch, (bool, np.bool_)):
        if batch < 0:
            raise ValueError(f"batch must be >= 0, got {batch}")
        return (int(batch),)
    try:
        items = tuple(batch)
    except TypeError:
        raise TypeError(f"batch must be None, an int or a sequence of ints, got {type(batch).__name__}") from None
    if not items:
        raise ValueError("batch is an empty sequence: give at least one batch index")
    for i, b in enumerate(items):
        if not isinstance(b, (int, np.integer)) or isinstance(b, (bool, np.bool_)) or b < 0:
            raise ValueError(f"batch[{i}] is {b!r}, expected an int >= 0")
    return tuple(int(b) for b in items)


def _resolve_policy(mdp: FiniteMDP, pi_or_policy_theta: Any):
    """(pi matrix, policy or None, theta or None)."""
    if isinstance(pi_or_policy_theta, tuple) and len(pi_or_policy_theta) == 2 and hasattr(
            pi_or_policy_theta[0], "probs"):
        policy, theta = pi_or_policy_theta
        if not hasattr(policy, "score_contract"):
            raise TypeError(f"{type(policy).__name__} has no score_contract(theta, weights): pass its "
                            "probability matrix instead, or a pgexact policy")
        pi = check_pi(mdp, pi_or_policy_theta, "pi_or_policy_theta")
        return pi, policy, theta
    return check_pi(mdp, pi_or_policy_theta, "pi_or_policy_theta"), None, None


def _neg_entropy_weights(pi: np.ndarray) -> np.ndarray:
    """:math:`-\\pi\\log\\pi` with 0 log 0 = 0."""
    out = np.zeros_like(pi)
    pos = pi > 0
    out[pos] = -pi[pos] * np.log(pi[pos])
    return out


def expected_update(
    mdp: FiniteMDP,
    pi_or_policy_theta: Any,
    convention: Convention,
    *,
    values: Any = None,
    batch: Any = None,
    method: str | None = None,
) -> ExpectedUpdate:
    r"""The exact expected update of one batch under ``convention`` (see the module docstring).

    .. math::

        \mathbb{E}[\text{update}] = \sum_{s,a} w(s,a)\, \nabla_\theta\log\pi_\theta(a|s),\qquad
        \text{tabular logits: } \text{update}[s] = w[s] - \pi[s] \textstyle\sum_a w[s, a]

    Parameters
    ----------
    mdp : FiniteMDP
        Dense or sparse; episodes end on entering ``mdp.terminal`` states or after
        ``convention.time_limit`` steps (``pgexact.gym.make_env(mdp, max_episode_steps=...)``).
    pi_or_policy_theta : array_like (S, A) or tuple (policy, theta)
        The policy that collects the batch. A pgexact policy (``TabularSoftmax``,
        ``LinearSoftmax``) gives the update in θ (:math:`J^\top w` through its
        ``score_contract``); a matrix gives it in the logits of a tabular softmax.
    convention : Convention
        ``normalize_advantages`` is ignored: the un-normalized expectation is returned.
    values : array_like, shape (S,), optional
        The frozen critic (default: the exact discounted :math:`V^\pi` of ``mdp``).
    batch : None, int or sequence of int
        Batch index b (the rows of stream steps b·n … b·n + n − 1, every environment reset at
        step 0); a sequence: the mean over those batches; None: the long-run average.
    method : {None, "renewal", "chain"}
        None picks the renewal computation where it applies, else the chain.

    Returns
    -------
    ExpectedUpdate

    Examples
    --------
    With the exact critic and bootstrapped time limits every row's expected advantage is
    :math:`A^\pi(s, a)`, whatever λ:

    >>> import numpy as np
    >>> from pgexact import evaluate
    >>> from pgexact.mdps import gridworld
    >>> mdp = gridworld(3, 3, gamma=0.8, slip=0.2)
    >>> pi = np.full((9, 4), 0.25)
    >>> c = Convention(lam=0.5, gamma=0.8, time_limit=10, n_steps=32)
    >>> e = expected_update(mdp, pi, c)
    >>> w = e.state_weights[:, None] * pi * evaluate(mdp, pi).A
    >>> bool(np.allclose(e.weights, w, atol=1e-14))
    True
    >>> f = expected_update(mdp, pi, c, method="chain")
    >>> bool(np.allclose(e.update, f.update, atol=1e-14))
    True
    """
    mdp = check_mdp(mdp)
    if not isinstance(convention, Convention):
        raise TypeError(f"convention must be a pgexact.conformance.Convention, got {type(convention).__name__}")
    pi, policy, theta = _resolve_policy(mdp, pi_or_policy_theta)
    V = _check_values(mdp, pi, values)
    batches = _check_batch(batch)
    renewal_ok = convention.autoreset in ("same_step", "disabled") and convention.truncation != "cross"
    if method is None:
        method = "renewal" if renewal_ok else "chain"
    if method == "renewal":
        if not renewal_ok:
            raise ValueError(f"method='renewal' does not cover truncation={convention.truncation!r} with "
                             f"autoreset={convention.autoreset!r}: use method='chain' (or None)")
        W, c = _renewal(mdp, pi, V, convention, [batches])
    elif method == "chain":
        W, c = _chain(mdp, pi, V, convention, [batches])
    else:
        raise ValueError(f"method must be None, 'renewal' or 'chain', got {method!r}")
    W, c = W[0], c[0]
    if convention.ent_coef != 0.0:
        W = W + convention.ent_coef * c[:, None] * _neg_entropy_weights(pi)
    if policy is None:
        update = W - pi * W.sum(axis=1, keepdims=True)
    else:
        update = np.asarray(policy.score_contract(theta, W), dtype=np.float64)
    return ExpectedUpdate(update=update, weights=W, state_weights=c,
                          batch=None if batches is None else (batches[0] if isinstance(batch, (int, np.integer)) else batches),
                          convention=convention, method=method)


def _logit_updates(mdp: FiniteMDP, pi: np.ndarray, V: np.ndarray, conv: Convention, groups: list,
                   method: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected logit updates of several groups of batches at once: the advantage part (G, S, A),
    the entropy part (G, S, A) and the state weights (G, S)."""
    renewal_ok = conv.autoreset in ("same_step", "disabled") and conv.truncation != "cross"
    if method is None:
        method = "renewal" if renewal_ok else "chain"
    W, c = (_renewal if method == "renewal" else _chain)(mdp, pi, V, conv, groups)
    E = conv.ent_coef * c[:, :, None] * _neg_entropy_weights(pi)
    return W - pi * W.sum(axis=2, keepdims=True), E - pi * E.sum(axis=2, keepdims=True), c


# ----------------------------------------------------------------------------- shared pieces
def _nnz(mdp: FiniteMDP) -> int:
    return int(mdp.P.nnz) if mdp.P.ndim == 2 else int(np.count_nonzero(mdp.P))


def _episode_marginals(mdp: FiniteMDP, pi: np.ndarray, T: int) -> np.ndarray:
    """q[k, s] = Pr(episode alive at time k and s_k = s), k = 0..T-1 (q[0] = mu0)."""
    S = mdp.n_states
    check_memory(f"conformance expected_update with time_limit={T}, S={S}", 8.0 * T * S * 3,
                 "lower time_limit")
    Ppi = mdp._policy_transition(pi)
    alive = (~mdp.terminal).astype(np.float64)
    q = np.empty((T, S))
    q[0] = mdp.mu0
    for k in range(1, T):
        q[k] = (q[k - 1] @ Ppi) * alive
    return q


def _renewal_sequence(q: np.ndarray, t_max: int) -> np.ndarray:
    """u[t] = Pr(an episode starts at stream step t), t = 0..t_max."""
    T = q.shape[0]
    alive = q.sum(axis=1)
    f = np.empty(T + 1)
    f[0] = 0.0
    f[1:T] = alive[:-1] - alive[1:]
    f[T] = alive[-1]
    u = np.zeros(t_max + 1)
    u[0] = 1.0
    fr = f[1:][::-1]  # fr[T - l] = f[l]
    for t in range(1, t_max + 1):
        lo = max(0, t - T)
        # sum_{l=1}^{min(t,T)} f_l u_{t-l}: u[lo:t] against f[t-lo .. 1]
        u[t] = np.dot(u[lo:t], fr[T - (t - lo):])
    return u


# ----------------------------------------------------------------------------- renewal method
def _renewal(mdp: FiniteMDP, pi: np.ndarray, V: np.ndarray, conv: Convention,
             groups: list) -> tuple[np.ndarray, np.ndarray]:
    """(W, c) of shape (G, S, A), (G, S): one per group of batches (None: the long-run average)."""
    S, A = mdp.n_states, mdp.n_actions
    T, n, g, lam = conv.time_limit, conv.n_steps, conv.gamma, conv.lam
    q = _episode_marginals(mdp, pi, T)
    omega = g ** np.arange(T) if conv.weighting == "discounted" else np.ones(T)
    M = min(n, T)  # longest m of either type
    ks = np.arange(T)
    G = len(groups)
    # trunc[k]: sum over rows j <= n - T + k of u_{bn+j-k}; endc[m-1, k] = u_{bn+n-m-k} [k < T - m]
    trunc = np.zeros((G, T))
    endc = np.zeros((G, M, T))
    real = [b for grp in groups if grp is not None for b in grp]
    if real:
        u = _renewal_sequence(q, (max(real) + 1) * n)
        cu = np.concatenate(([0.0], np.cumsum(u)))  # cu[i] = sum u[:i]
    for i, grp in enumerate(groups):
        if grp is None:
            L = q.sum()  # expected episode length
            trunc[i] = np.maximum(n - T + ks + 1, 0) / L
            for m in range(1, M + 1):
                endc[i, m - 1, : max(T - m, 0)] = 1.0 / L
            continue
        for b in grp:
            t0 = b * n
            hi = n - T + ks  # last row j of truncation type
            lo_idx = np.maximum(t0 - ks, 0)  # stream steps t0 + j - k >= 0
            hi_idx = t0 + hi - ks
            trunc[i] += np.where((hi >= 0) & (hi_idx >= lo_idx), cu[np.clip(hi_idx + 1, 0, None)] - cu[lo_idx], 0.0)
            for m in range(1, M + 1):
                kk = ks[: max(T - m, 0)]
                idx = t0 + n - m - kk
                endc[i, m - 1, : kk.size] += np.where(idx >= 0, u[np.clip(idx, 0, None)], 0.0)
        trunc[i] /= len(grp)
        endc[i] /= len(grp)
    trunc *= omega
    endc *= omega
    c_end = endc @ q  # (G, M, S)
    nonterm = (~mdp.terminal).astype(np.float64)
    PV = mdp._expected_next(V * nonterm)  # (S, A)
    Pnt = mdp._expected_next(nonterm)
    base = mdp.r - V[:, None]
    delta_mid = base + g * PV
    beta_trunc = {"bootstrap": g * PV, "terminate": 0.0 * PV,
                  "reset_obs": g * Pnt * float(mdp.mu0 @ V)}[conv.truncation]
    beta_end = g * PV if conv.bootstrap_end else 0.0 * PV
    fams = {"trunc": base + beta_trunc, "end": base + beta_end}
    if (conv.truncation == "bootstrap" and conv.bootstrap_end) or (
            conv.truncation == "terminate" and not conv.bootstrap_end):
        fams = {"both": fams["trunc"]}
    W = np.zeros((G, S, A))
    ctot = np.zeros((G, S))
    zero = np.zeros((G, S))
    for m in range(1, M + 1):
        ct = trunc[:, T - m, None] * q[T - m] if m <= n else zero
        ce = c_end[:, m - 1] if m <= T - 1 else zero
        ctot += ct + ce
        for key, h in fams.items():
            coef = ct + ce if key == "both" else (ct if key == "trunc" else ce)
            W += coef[:, :, None] * h
        if m < M:
            for key, h in fams.items():
                fams[key] = delta_mid + (g * lam) * mdp._expected_next((pi * h).sum(axis=1) * nonterm)
    W *= pi
    return W / n, ctot / n


# ----------------------------------------------------------------------------- chain method
def _chain(mdp: FiniteMDP, pi: np.ndarray, V: np.ndarray, conv: Convention,
           groups: list) -> tuple[np.ndarray, np.ndarray]:
    """(W, c) of shape (G, S, A), (G, S): one per group of batches (None: the long-run average)."""
    S, A = mdp.n_states, mdp.n_actions
    T, n, g, lam = conv.time_limit, conv.n_steps, conv.gamma, conv.lam
    real = [b for grp in groups if grp is not None for b in grp]
    nb = max(real) + 1 if real else 1
    G = len(groups)
    work = float(n) * nb * T * max(_nnz(mdp), S)
    if work > _CHAIN_WORK_LIMIT:
        raise ValueError(
            f"the chain computation would need about {work:.3g} operations (n_steps={n} x batches x "
            f"time_limit={T} x nnz(P)), more than {_CHAIN_WORK_LIMIT:.0e}: use a same_step convention "
            "with truncation bootstrap/terminate/reset_obs (the renewal method) or fewer batches")
    nxt = conv.autoreset == "next_step"
    check_memory(f"conformance chain with n_steps={n}, time_limit={T}, S={S}",
                 8.0 * G * n * T * S * 2 * 2, "lower n_steps or time_limit")
    term = mdp.terminal.astype(np.float64)
    nonterm = 1.0 - term
    mu0 = mdp.mu0
    Ppi = mdp._policy_transition(pi)
    omega = g ** np.arange(T + 1) if conv.weighting == "discounted" else np.ones(T + 1)

    # ---- forward occupancies rho_j (rows j of the batches), regular (T, S) and reset rows (T, S)
    def step(reg: np.ndarray, dum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = reg @ Ppi if not hasattr(Ppi, "tocsr") else (Ppi.T @ reg.T).T
        new_reg = np.zeros_like(reg)
        new_dum = np.zeros_like(dum)
        new_reg[1:] = y[:-1] * nonterm
        ended_term = y * term  # (T, S), entering terminal at k+1
        ended_trunc = y[T - 1] * nonterm
        if nxt:
            new_dum[:] = ended_term
            new_dum[T - 1] += ended_trunc
            new_reg[0] = mu0 * dum.sum()
        else:
            new_reg[0] = mu0 * (ended_term.sum() + ended_trunc.sum())
        return new_reg, new_dum

    rho_reg = np.zeros((G, n, T, S))
    rho_dum = np.zeros((G, n, T, S))
    for i, grp in enumerate(groups):
        if grp is None:
            q = _episode_marginals(mdp, pi, T)
            y = q @ Ppi if not hasattr(Ppi, "tocsr") else (Ppi.T @ q.T).T
            dum = y * term
            dum[T - 1] += y[T - 1] * nonterm
            cycle = q.sum() + (1.0 if nxt else 0.0)
            rho_reg[i] = q / cycle
            if nxt:
                rho_dum[i] = dum / cycle
    if real:
        members: dict[int, list] = {}
        for i, grp in enumerate(groups):
            for b in grp or ():
                members.setdefault(b, []).append(i)
        reg = np.zeros((T, S))
        reg[0] = mu0
        dum = np.zeros((T, S))
        for b in range(nb):
            for j in range(n):
                for i in members.get(b, ()):
                    rho_reg[i, j] += reg
                    rho_dum[i, j] += dum
                reg, dum = step(reg, dum)
        for i, grp in enumerate(groups):
            if grp is not None:
                rho_reg[i] /= len(grp)
                rho_dum[i] /= len(grp)

    # ---- backward expected advantages G^(m), m = 1..n (row j = n - m)
    V_nt = V * nonterm
    PV = mdp._expected_next(V_nt)  # (S, A)
    Pnt = mdp._expected_next(nonterm)
    mu0V = float(mu0 @ V)
    base = mdp.r - V[:, None]
    # delta at regular (k, s, a): mid (m >= 2) and end (m = 1)
    d_mid = np.broadcast_to(base + g * PV, (T, S, A)).copy()
    d_end = np.broadcast_to(base + (g * PV if conv.bootstrap_end else 0.0), (T, S, A)).copy()
    tr = conv.truncation
    last_mid = {"bootstrap": g * PV, "terminate": 0.0 * PV,
                "reset_obs": g * PV if nxt else g * Pnt * mu0V,
                "cross": g * PV if nxt else g * Pnt * mu0V}[tr]
    last_end = last_mid if tr != "cross" else (last_mid if conv.bootstrap_end else 0.0 * PV)
    d_mid[T - 1] = base + last_mid
    d_end[T - 1] = base + last_end
    dum_mid = np.broadcast_to((g * mu0V - V)[:, None], (S, A))
    dum_end = np.broadcast_to(((g * mu0V if conv.bootstrap_end else 0.0) - V)[:, None], (S, A))

    W = np.zeros((G, S, A))
    ctot = np.zeros((G, S))
    om_reg = omega[:T][:, None]  # (T, 1)
    om_dum = omega[1:T + 1][:, None]  # L = 1..T
    G_reg = d_end
    G_dum = np.broadcast_to(dum_end, (T, S, A))
    for m in range(1, n + 1):
        j = n - m
        wr = rho_reg[:, j] * om_reg  # (G, T, S)
        W += np.einsum("gks,ksa->gsa", wr, G_reg)
        ctot += wr.sum(axis=1)
        if nxt:
            wd = rho_dum[:, j] * om_dum
            W += np.einsum("gks,ksa->gsa", wd, G_dum)
            ctot += wd.sum(axis=1)
        if m == n:
            break
        x_reg = (pi[None] * G_reg).sum(axis=2)  # (T, S)
        x_dum = (pi[None] * G_dum).sum(axis=2)
        cont = np.zeros((T, S, A))
        # k + 1 < T: continue into (k + 1, s') for non-terminal s'
        cont[: T - 1] = np.moveaxis(mdp._expected_next((x_reg[1:] * nonterm).T), 2, 0)
        if tr == "cross":
            if nxt:
                cont[T - 1] = mdp._expected_next(x_dum[T - 1] * nonterm)
            else:
                cont[T - 1] = Pnt * float(mu0 @ x_reg[0])
        G_new = d_mid + (g * lam) * cont
        G_dum = np.broadcast_to(dum_mid + (g * lam) * float(mu0 @ x_reg[0]), (T, S, A))
        G_reg = G_new
    W *= pi
    return W / n, ctot / n
