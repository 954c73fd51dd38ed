"""Regression tests: silent wrong answers, hangs and bad input found by an attack on the public API.

Each test fails on the code before its fix (each was checked by reverting the fix once).
"""

import numpy as np
import pytest
from scipy.special import logsumexp

import pgexact as pg
from pgexact import mdps
from pgexact.updates import soft_policy_iteration, soft_value_iteration


# --------------------------------------------------------------------------- soft control, masks
def _masked_mdp():
    """4 states, 3 actions; state s cannot take action s % 3, so two feasible actions everywhere."""
    base = mdps.random_mdp(4, 3, gamma=0.8, seed=3)
    mask = np.ones((4, 3), dtype=bool)
    mask[np.arange(4), np.arange(4) % 3] = False
    r = np.array(base.r)
    r[~mask] = 5.0  # an attractive infeasible action: ignoring the mask shows in the answer
    return pg.FiniteMDP(base.P, r, base.mu0, 0.8, action_mask=mask), mask


def _reduced_soft_optimum(mdp, mask, alpha):
    """Soft-optimal Q on the MDP with the infeasible actions deleted (plain fixed-point iteration).

    Independent of pgexact's soft iteration: the reduced MDP has no mask, and the iteration
    is written out here with scipy's logsumexp.
    """
    S = mdp.n_states
    feas = [np.flatnonzero(mask[s]) for s in range(S)]
    P = np.array([mdp.P[s, feas[s]] for s in range(S)])  # (S, 2, S)
    r = np.array([mdp.r[s, feas[s]] for s in range(S)])
    Q = np.zeros_like(r)
    for _ in range(400):  # 0.8^400 < 1e-38
        V = alpha * logsumexp(Q / alpha, axis=1)
        Q = r + mdp.gamma * P @ V
    pi = np.zeros((S, mdp.n_actions))
    for s in range(S):
        pi[s, feas[s]] = np.exp((Q[s] - V[s]) / alpha)
    return V, pi


@pytest.mark.parametrize("alpha", [0.05, 0.5, 3.0])
def test_soft_iterations_respect_the_action_mask(alpha):
    mdp, mask = _masked_mdp()
    V_ref, pi_ref = _reduced_soft_optimum(mdp, mask, alpha)
    vi = soft_value_iteration(mdp, alpha)
    assert np.all(vi.policy[~mask] == 0.0)
    assert np.allclose(vi.V, V_ref, rtol=1e-10, atol=0)  # tol 1e-12 relative, plus rounding
    assert np.allclose(vi.policy, pi_ref, rtol=0, atol=1e-10)
    pg.evaluate(mdp, vi.policy)  # a feasible policy: accepted
    spi = soft_policy_iteration(mdp, alpha)  # default start: uniform over the feasible actions
    assert np.all(spi.policy[~mask] == 0.0)
    assert np.allclose(spi.evaluation.V, V_ref, rtol=1e-10, atol=0)
    assert np.allclose(spi.policy, pi_ref, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- copies stay read-only
def _records():
    import scipy.sparse

    from pgexact import average, estimators, lqr

    mdp = mdps.random_mdp(3, 2, gamma=0.9, seed=0)
    pi = np.full((3, 2), 0.5)
    sparse = pg.FiniteMDP(scipy.sparse.csr_array(np.reshape(mdp.P, (6, 3))), mdp.r, mdp.mu0, gamma=0.9)
    tr = pg.rollout(mdp, pi, 20, horizon=4, seed=0)
    model = lqr.LQR([[1.0]], [[1.0]], [[1.0]], [[1.0]], gamma=0.9, noise_cov=[[0.1]], Sigma0=[[1.0]])
    return {
        "FiniteMDP": mdp,
        "FiniteMDP (sparse P)": sparse,
        "Evaluation": pg.evaluate(mdp, pi),
        "AverageEvaluation": average.evaluate(mdp, pi),
        "Trajectories": tr,
        "Estimate": estimators.reinforce(tr, pg.TabularSoftmax(3, 2), np.zeros(6)),
        "LQR": model,
        "LQREvaluation": lqr.evaluate(model, [[0.5]]),
    }


def _read_only_arrays(obj):
    out = {}
    for name, value in vars(obj).items():
        if isinstance(value, np.ndarray):
            out[name] = value
        elif hasattr(value, "tocsr") and hasattr(value, "data"):
            out[name + ".data"] = value.data
    return {k: v for k, v in out.items() if not v.flags.writeable}


@pytest.mark.parametrize("how", ["deepcopy", "copy", "pickle"])
def test_copies_of_read_only_records_stay_read_only(how):
    import copy
    import pickle

    clone = {"deepcopy": copy.deepcopy, "copy": copy.copy, "pickle": lambda o: pickle.loads(pickle.dumps(o))}[how]
    for label, obj in _records().items():
        frozen = _read_only_arrays(obj)
        assert frozen, label  # the record has read-only arrays to begin with
        twin = clone(obj)
        for name in frozen:
            value = getattr(twin, name.split(".")[0])
            arr = value.data if name.endswith(".data") else value
            assert not arr.flags.writeable, f"{label}.{name} became writeable after {how}"
    twin = clone(_records()["FiniteMDP"])
    with pytest.raises(ValueError, match="read-only"):
        twin.P[0, 0, :] = 5.0
