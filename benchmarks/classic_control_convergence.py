"""Exact J on the discretized grid against Monte Carlo in the original gymnasium environment.

For Pendulum-v1, MountainCar-v0 and CartPole-v1, a fixed smooth stochastic policy of the
continuous state (the ones of ``tests/test_classic_control.py``) is evaluated exactly on grids of
increasing resolution (``pgexact.mdps.pendulum`` / ``mountain_car`` / ``cartpole``, H = 200,
gamma = 1) and by Monte Carlo with gymnasium's own ``env.step`` (N episodes, returns summed
over at most 200 steps). Prints the gap J_grid - J_MC per grid size (the builders' defaults
first) with the Monte Carlo standard error and the time to build and evaluate each grid.

    python benchmarks/classic_control_convergence.py [--episodes 1000] [--batch 1]

``--batch B`` runs B gymnasium environments side by side (each still stepped by its own
``env.step``, with gymnasium's ``TimeLimit`` and checker wrappers) and looks the policy up for all
of them at once, so that 20,000 MountainCar episodes take minutes instead of half an hour; the
returns are the same process, only the random streams differ from ``--batch 1``.

Measured (``--only mountain_car --episodes 80000 --batch 1000``, seed 0): gymnasium J = -136.225 +- 0.094;
exact J on the default 321 x 321 grid -135.629, gap +0.44% (+6.4 se); 241 x 241 +0.80%, 161 x 161 +1.78%,
81 x 81 +5.24%. Defaults against 20,000 real episodes each (``--only cartpole,pendulum --episodes 20000
--batch 1000 --defaults-only``): Pendulum -1543.08 vs -1550.69 +- 0.26 (+0.49%), CartPole 197.39 vs
197.25 +- 0.13 (+0.07%).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from pgexact import evaluate
from pgexact.mdps import cartpole, mountain_car, pendulum

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_classic_control import POLICIES  # noqa: E402

H = 200
# (grid, builder keywords); None = the builder's defaults (first row)
CASES = {
    "pendulum": ("Pendulum-v1", pendulum, [None, (21, 21), (41, 41), (81, 81)]),
    "mountain_car": ("MountainCar-v0", mountain_car, [None, (81, 81), (161, 161), (241, 241)]),
    "cartpole": ("CartPole-v1", cartpole, [None, (7, 7, 11, 11), (9, 9, 15, 15), (13, 13, 25, 25),
                                           ((7, 7, 11, 11), {"x_dot_max": 1.0, "theta_dot_max": 1.0}),
                                           ((11, 11, 21, 21), {"x_dot_max": 0.5, "theta_dot_max": 0.5})]),
}


def gym_monte_carlo(name: str, env_id: str, actions: np.ndarray, n: int, seed: int) -> tuple[float, float]:
    import gymnasium as gym

    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    G = np.zeros(n)
    for i in range(n):
        env.reset(seed=int(rng.integers(2**31)))
        for _ in range(H):
            x = np.array(env.unwrapped.state, dtype=float)[None, :]
            p = POLICIES[name](x, actions)[0]
            k = min(int((rng.random() > np.cumsum(p)).sum()), len(actions) - 1)
            a = np.array([actions[k]]) if name == "pendulum" else int(actions[k])
            _, r, term, _, _ = env.step(a)
            G[i] += r
            if term:
                break
    return float(G.mean()), float(G.std(ddof=1) / np.sqrt(n))


def gym_monte_carlo_batched(name: str, env_id: str, actions: np.ndarray, n: int, seed: int,
                            batch: int) -> tuple[float, float]:
    """As :func:`gym_monte_carlo`, with ``batch`` real environments stepped side by side."""
    import gymnasium as gym

    rng = np.random.default_rng(seed)
    envs = [gym.make(env_id) for _ in range(min(batch, n))]
    G = np.zeros(n)
    for start in range(0, n, len(envs)):
        idx = np.arange(start, min(start + len(envs), n))
        live = list(range(len(idx)))
        for j in live:
            envs[j].reset(seed=int(rng.integers(2**31)))
        for _ in range(H):
            if not live:
                break
            x = np.array([envs[j].unwrapped.state for j in live], dtype=float)
            p = POLICIES[name](x, actions)
            k = np.minimum((rng.random((len(live), 1)) > np.cumsum(p, axis=1)).sum(axis=1), len(actions) - 1)
            still = []
            for j, kj in zip(live, k):
                a = np.array([actions[kj]]) if name == "pendulum" else int(actions[kj])
                _, r, term, trunc, _ = envs[j].step(a)
                G[idx[j]] += r
                if not (term or trunc):
                    still.append(j)
            live = still
    return float(G.mean()), float(G.std(ddof=1) / np.sqrt(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--only", default=",".join(CASES))
    ap.add_argument("--batch", type=int, default=1, help="gymnasium environments stepped side by side")
    ap.add_argument("--defaults-only", action="store_true", help="evaluate only the builders' default grids")
    args = ap.parse_args()
    for name in args.only.split(","):
        env_id, build, grids = CASES[name]
        actions = build(*((3, 3) if name != "cartpole" else (3, 3, 3, 3)), gamma=1.0, horizon=H).actions
        t = time.perf_counter()
        if args.batch > 1:
            m, se = gym_monte_carlo_batched(name, env_id, actions, args.episodes, seed=0, batch=args.batch)
        else:
            m, se = gym_monte_carlo(name, env_id, actions, args.episodes, seed=0)
        print(f"{env_id}: Monte Carlo in gymnasium J = {m:.3f} ± {se:.3f} (N = {args.episodes}, "
              f"{time.perf_counter() - t:.0f} s)")
        for case in grids[:1] if args.defaults_only else grids:
            grid, kw = (case, {}) if case is None or isinstance(case[0], int) else case
            t = time.process_time()
            env = build(*(grid or ()), gamma=1.0, horizon=H, **kw)
            J = evaluate(env.mdp, POLICIES[name](env.observations, env.actions)).J
            label = "x".join(map(str, env.grid_shape)) + (" (default)" if grid is None else "")
            label += "".join(f" {k}={v}" for k, v in kw.items())
            print(f"  grid {label:>40s} S = {env.mdp.n_states:7d}: exact J = {J:10.3f}, gap {J - m:+8.3f} "
                  f"({100 * (J - m) / abs(m):+6.2f}%, {(J - m) / se:+6.1f} se), {time.process_time() - t:.1f} s CPU")


if __name__ == "__main__":
    main()
