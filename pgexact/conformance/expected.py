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
from typing import Any

import numpy as np

from .._validation import as_float_array, check_time_steps
from ..exact.evaluation import _evaluate
from ..models.finite_mdp import FiniteMDP, check_mdp, check_pi
from ._chain import _chain, _episode_marginals
from .convention import Convention

__all__ = ["ExpectedUpdate", "expected_update"]

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
            arr = getattr(self, name)
            if isinstance(arr, np.ndarray):  # a plain record: anything else is stored as given
                arr.flags.writeable = False


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
        if batch > 10**9:
            raise ValueError(f"batch must be at most 1e9, got {batch} (batch=None is the long-run average)")
        return (int(batch),)
    if hasattr(batch, "__len__") and not isinstance(batch, (str, bytes)) and len(batch) > 10**5:
        raise ValueError(f"batch has {len(batch)} entries, more than 1e5: pass a shorter sequence, or None")
    if isinstance(batch, (str, bytes, dict)) or not hasattr(batch, "__iter__"):
        raise TypeError(f"batch must be None, an int or a sequence of ints, got {type(batch).__name__}")
    try:
        items = tuple(batch)
    except TypeError:
        raise TypeError(f"batch must be None, an int or a sequence of ints, got {type(batch).__name__}") from None
    if not items:
        raise ValueError("batch is an empty sequence: give at least one batch index")
    for i, b in enumerate(items):
        if not isinstance(b, (int, np.integer)) or isinstance(b, (bool, np.bool_)) or not 0 <= b <= 10**9:
            raise ValueError(f"batch[{i}] is {b!r}, expected an int in 0 .. 1e9")
    return tuple(int(b) for b in items)


def _check_work(mdp: FiniteMDP, conv: Convention, batches: tuple[int, ...] | None) -> None:
    """Refuse recursions longer than the exact core runs (the renewal sequence, the m recursion)."""
    steps = conv.n_steps * (1 if batches is None else max(batches) + 1) + conv.time_limit
    check_time_steps(f"expected_update with n_steps={conv.n_steps}, time_limit={conv.time_limit} and "
                     f"batch={'None' if batches is None else max(batches)}", steps,
                     "lower n_steps, time_limit or the batch index (batch=None is the long-run average)")


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


def _entropy_weights(conv: Convention, c: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Weights of the entropy bonus: ``ent_coef * c(s) * (-pi log pi)``, for state weights c (..., S)."""
    return conv.ent_coef * c[..., :, None] * _neg_entropy_weights(pi)


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
    if method is not None and not (isinstance(method, str) and method in ("renewal", "chain")):
        raise ValueError(f"method must be None, 'renewal' or 'chain', got {method!r}")
    pi, policy, theta = _resolve_policy(mdp, pi_or_policy_theta)
    V = _check_values(mdp, pi, values)
    batches = _check_batch(batch)
    _check_work(mdp, convention, batches)
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
    W = W + _entropy_weights(convention, c, pi)
    if policy is None:
        update = W - pi * W.sum(axis=1, keepdims=True)
    else:
        update = np.asarray(policy.score_contract(theta, W), dtype=np.float64)
    return ExpectedUpdate(update=update, weights=W, state_weights=c,
                          batch=None if batches is None else (batches[0] if isinstance(batch, (int, np.integer)) else batches),
                          convention=convention, method=method)


def _logit_updates(mdp: FiniteMDP, pi: np.ndarray, V: np.ndarray, conv: Convention, groups: list,
                   method: str | None = None, cache: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected logit updates of several groups of batches at once: the advantage part (G, S, A),
    the entropy part (G, S, A) and the state weights (G, S)."""
    renewal_ok = conv.autoreset in ("same_step", "disabled") and conv.truncation != "cross"
    if method is None:
        method = "renewal" if renewal_ok else "chain"
    if method == "renewal":
        W, c = _renewal(mdp, pi, V, conv, groups)
    else:
        W, c = _chain(mdp, pi, V, conv, groups, cache)
    E = _entropy_weights(conv, c, pi)
    return W - pi * W.sum(axis=2, keepdims=True), E - pi * E.sum(axis=2, keepdims=True), c


# ----------------------------------------------------------------------------- renewal method
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


