"""Exact bias of the second-order estimators across objectives (printed as a table).

Every estimator is applied to episodes of T steps weighted by gamma^t (``rollout(mdp, pi, N,
horizon=T)`` on the discounted chain); its exact mean is the expectation over every trajectory
(:func:`pgexact.estimators.enumerate_trajectories`), and Shen et al.'s gradient-difference
estimator is also integrated over a ~ U[0, 1] by Gauss-Legendre quadrature (24 nodes). Each mean
is compared with the exact Hessian (or gradient difference) of three objectives:

(a) the finite-horizon undiscounted objective  E[sum_{t<T} r_t]  (gamma = 1, horizon T),
(b) the discounted objective truncated at T    E[sum_{t<T} gamma^t r_t],
(c) the infinite discounted objective          E[sum_t gamma^t r_t],

by the relative Frobenius error ||E[H^] - H_obj||_F / ||H_obj||_F. The last column is the exact
per-episode variance E||H^ - E H^||_F^2 (the trace of the covariance; N episodes divide it by N).

Usage: python benchmarks/second_order_bias.py [--states 4] [--horizon 5] [--gamma 0.9] [--slip 0.1]
"""

from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from pgexact import TabularSoftmax, evaluate, hessian, policy_gradient
from pgexact.estimators import (
    enumerate_trajectories,
    exact_mean,
    hessian_aided_difference,
    hessian_loaded_dice,
    hessian_reinforce,
    hessian_reward_to_go,
    hessian_shen,
)
from pgexact.mdps import chain


def bias_table(n_states: int = 4, horizon: int = 5, gamma: float = 0.9, slip: float = 0.1, seed: int = 0):
    """Rows ``(name, bias (a), bias (b), bias (c), per-episode variance)`` on ``chain(n_states)``."""
    mdp = chain(n_states, gamma=gamma, slip=slip)
    objectives = (mdp.with_horizon(horizon, gamma=1.0), mdp.with_horizon(horizon), mdp)
    pol = TabularSoftmax(n_states, 2)
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=pol.n_params)
    pi = pol.probs(theta)
    trajs, p = enumerate_trajectories(mdp, pi, horizon=horizon)
    V = evaluate(mdp.with_horizon(horizon), pi).V  # the exact time-indexed values, as baseline
    estimators = {
        "hessian_reinforce (total return)": hessian_reinforce(trajs, pol, theta),
        "hessian_reward_to_go (= DiCE, no baseline)": hessian_reward_to_go(trajs, pol, theta),
        "hessian_loaded_dice, baseline V_t, lam=1": hessian_loaded_dice(trajs, pol, theta, V),
        "hessian_loaded_dice, baseline V_t, lam=0.5": hessian_loaded_dice(trajs, pol, theta, V, lam=0.5),
        "hessian_shen (Shen et al. H~)": hessian_shen(trajs, pol, theta),
    }
    refs = [hessian(obj, pol, theta) for obj in objectives]
    rows = []
    for name, est in estimators.items():
        H = np.asarray(est.samples)
        mean = exact_mean(H, p)
        var = float(p @ np.sum((H - mean) ** 2, axis=(1, 2)))
        rows.append((name, *(np.linalg.norm(mean - R) / np.linalg.norm(R) for R in refs), var))
    # Shen et al.'s gradient difference, over a ~ U[0, 1] (Gauss-Legendre) and tau ~ theta_a
    theta1 = theta + 0.5 * rng.normal(size=pol.n_params)
    x, w = np.polynomial.legendre.leggauss(24)
    mean, second = 0.0, 0.0
    for a, wa in zip((x + 1) / 2, w / 2):
        tr_a, p_a = enumerate_trajectories(mdp, pol.probs(a * theta1 + (1 - a) * theta), horizon=horizon)
        D = np.asarray(hessian_aided_difference(tr_a, pol, theta, theta1, a).samples)
        mean = mean + wa * exact_mean(D, p_a)
        second = second + wa * float(p_a @ np.sum(D**2, axis=1))
    diffs = [policy_gradient(obj, pol, theta1) - policy_gradient(obj, pol, theta) for obj in objectives]
    rows.append(("hessian_aided_difference, a ~ U[0,1]", *(np.linalg.norm(mean - d) / np.linalg.norm(d) for d in diffs),
                 second - float(mean @ mean)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--slip", type=float, default=0.1)
    args = parser.parse_args()
    with threadpool_limits(1):
        rows = bias_table(args.states, args.horizon, args.gamma, args.slip)
    print(f"chain({args.states}, gamma={args.gamma}, slip={args.slip}), tabular softmax, episodes of T={args.horizon} "
          "steps weighted gamma^t; relative Frobenius bias of the exact mean")
    head = ("estimator", "(a) finite, undisc.", "(b) truncated J_T", "(c) discounted J", "per-episode var")
    print(f"| {head[0]:<44} | {head[1]:>19} | {head[2]:>17} | {head[3]:>16} | {head[4]:>15} |")
    print(f"|{'-' * 46}|{'-' * 21}|{'-' * 19}|{'-' * 18}|{'-' * 17}|")
    for name, a, b, c, var in rows:
        print(f"| {name:<44} | {a:>19.2e} | {b:>17.2e} | {c:>16.2e} | {var:>15.3g} |")


if __name__ == "__main__":
    main()
