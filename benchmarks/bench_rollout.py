"""Throughput of pgexact.rollout against the RNG floor, gymnasium and envpool, measured in one run.

    python benchmarks/bench_rollout.py [--episodes 100000] [--steps 100] [--repeats 3]

Reports transitions per second (one transition = one recorded (state, action, reward) step) for

* ``pgexact.rollout`` on random dense MDPs with S = 16 and S = 256, A = 4, ``episodes x steps``
  transitions (truncated discounted objective, horizon = steps), with the numpy kernel and, when
  numba is installed, the compiled one (the same episodes, bit for bit);
* the RNG floor: the same numpy Generator (PCG64) drawing two uniforms per transition into a
  preallocated buffer, the least work any sampler that draws an action and a next state
  from uniforms must do (pgexact's joint alias table draws one);
* gymnasium's FrozenLake-v1 (S = 16, A = 4) stepped through ``gymnasium.make_vec`` (sync);
* envpool's FrozenLake-v1 with ``num_envs`` environments, if envpool is installed;

and the ratios. Timings are CPU time of this process (``time.process_time``: user + sys, which
other processes' load does not inflate), BLAS limited to one thread with threadpoolctl, subject
and references interleaved round by round; the median of ``--repeats`` rounds is reported.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from threadpoolctl import threadpool_limits

import pgexact.sampling.kernel as kernel
from pgexact import rollout
from pgexact.mdps import random_mdp


def cpu_time(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def best_time(fn, repeats: int) -> float:
    """Median CPU time of ``repeats`` calls."""
    return float(np.median([cpu_time(fn) for _ in range(repeats)]))


def pgexact_runner(S: int, A: int, episodes: int, steps: int, compiled: bool):
    """``rollout`` with the compiled kernel (numba) or the numpy one; both give the same episodes."""
    mdp = random_mdp(S, A, gamma=0.99, seed=S)
    pi = np.random.default_rng(S).dirichlet(np.ones(A), size=S)

    def run() -> None:
        kernel.USE_COMPILED = compiled
        # each call builds its alias tables from scratch: their construction is part of the time
        rollout(mdp, pi, episodes, horizon=steps, seed=1)

    run()  # warm-up (and, for the compiled kernel, numba's import and load)
    return run


def floor_runner(episodes: int, steps: int):
    gen = np.random.Generator(np.random.PCG64(0))
    buf = np.empty(2 * episodes)

    def run() -> None:
        for _ in range(steps):
            gen.random(out=buf)

    return run


def bench_gymnasium(num_envs: int, steps: int, repeats: int) -> float | None:
    try:
        import gymnasium as gym
    except ImportError:
        return None
    env = gym.make_vec("FrozenLake-v1", num_envs=num_envs, vectorization_mode="sync")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, size=(steps, num_envs))

    def run() -> None:
        for t in range(steps):
            env.step(actions[t])

    rate = num_envs * steps / best_time(run, repeats)
    env.close()
    return rate


def bench_envpool(num_envs: int, steps: int, repeats: int) -> float | None:
    try:
        import envpool
    except ImportError:
        return None
    env = envpool.make("FrozenLake-v1", env_type="gymnasium", num_envs=num_envs)
    env.reset()
    actions = np.random.default_rng(0).integers(0, 4, size=(steps, num_envs))

    def run() -> None:
        for t in range(steps):
            env.step(actions[t])

    rate = num_envs * steps / best_time(run, repeats)
    env.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gym-envs", type=int, default=100)
    ap.add_argument("--gym-steps", type=int, default=500)
    ap.add_argument("--envpool-envs", type=int, default=1000)
    ap.add_argument("--envpool-steps", type=int, default=500)
    args = ap.parse_args()

    print(f"# bench_rollout: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"numpy {np.__version__}, {args.episodes} episodes x {args.steps} steps")
    rates: dict[str, float | None] = {}
    # interleaved: each round times the floor and both problems back to back, so that load from
    # other processes affects them alike; the median round of each is reported
    kernels = ["numpy"] + (["compiled"] if kernel.compiled_kernels() is not None else [])
    runners = {
        f"pgexact.rollout S={S} A=4, {k} kernel": pgexact_runner(S, 4, args.episodes, args.steps, k == "compiled")
        for k in kernels
        for S in (16, 256)
    }
    runners["RNG floor (2 uniforms/transition)"] = floor_runner(args.episodes, args.steps)
    times: dict[str, list[float]] = {name: [] for name in runners}
    with threadpool_limits(1):
        for _ in range(args.repeats):
            for name, fn in runners.items():
                times[name].append(cpu_time(fn))
    for name in runners:
        rates[name] = args.episodes * args.steps / float(np.median(times[name]))
    rates[f"gymnasium FrozenLake-v1 (make_vec sync, {args.gym_envs} envs)"] = bench_gymnasium(
        args.gym_envs, args.gym_steps, args.repeats
    )
    rates[f"envpool FrozenLake-v1 ({args.envpool_envs} envs)"] = bench_envpool(
        args.envpool_envs, args.envpool_steps, args.repeats
    )

    print()
    print("| sampler | transitions / s |")
    print("|---|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {'absent (not installed)' if rate is None else f'{rate:,.0f}'} |")

    floor = rates["RNG floor (2 uniforms/transition)"]
    gym_rate = next(v for k, v in rates.items() if k.startswith("gymnasium"))
    pool_rate = next(v for k, v in rates.items() if k.startswith("envpool"))
    print()
    print("| ratio | S=16 | S=256 | target |")
    print("|---|---:|---:|---:|")
    for k in kernels:
        s16, s256 = rates[f"pgexact.rollout S=16 A=4, {k} kernel"], rates[f"pgexact.rollout S=256 A=4, {k} kernel"]

        def row(label: str, ref: float | None, target: str) -> None:
            if ref is None:
                print(f"| {label} | absent | absent | {target} |")
            else:
                print(f"| {label} | {s16 / ref:,.2f} | {s256 / ref:,.2f} | {target} |")  # type: ignore[operator]

        row(f"rollout ({k} kernel) / RNG floor", floor, ">= 0.45 (S=16), >= 0.33 (S=256)")
        row(f"rollout ({k} kernel) / envpool", pool_rate, ">= 50")
        row(f"rollout ({k} kernel) / gymnasium", gym_rate, ">= 200")
    if "compiled" not in kernels:
        print("\nnumba is not installed: only the numpy kernel was measured (pip install pgexact[fast])")


if __name__ == "__main__":
    main()
