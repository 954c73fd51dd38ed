r"""Figure: optimal value and policy of the discretized Pendulum and MountainCar over their state grids."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..mdps.classic_control import mountain_car, pendulum
from ..updates import value_iteration


def make_classic_control(fig: Figure) -> None:
    envs = [
        (pendulum(41, 41, 5, gamma=0.98), r"$\theta$ (rad, 0 = upright)", r"$\dot\theta$ (rad/s)", "torque"),
        (mountain_car(61, 61, gamma=0.99), "position", "velocity", "push (−1, 0, +1)"),
    ]
    axs = fig.subplots(2, 2)
    for row, (env, xl, yl, ul) in enumerate(envs):
        vi = value_iteration(env.mdp, tol=1e-10)
        nx, ny = env.grid_shape
        V = vi.V[: nx * ny].reshape(nx, ny)
        act = env.actions if env.name == "Pendulum-v1" else env.actions - 1.0
        u = (vi.policy[: nx * ny] @ act).reshape(nx, ny)
        ext = [env.axes[0][0], env.axes[0][-1], env.axes[1][0], env.axes[1][-1]]
        for ax, data, title, cmap in ((axs[row, 0], V, f"{env.name}: optimal V", "viridis"),
                                      (axs[row, 1], u, f"{env.name}: optimal action ({ul})", "coolwarm")):
            im = ax.imshow(data.T, origin="lower", extent=ext, aspect="auto", cmap=cmap, interpolation="nearest")
            ax.set_xlabel(xl)
            ax.set_ylabel(yl)
            ax.set_title(title, fontsize=9)
            fig.colorbar(im, ax=ax)
    fig.suptitle("Discretized classic control (exact value iteration on the grid MDP; γ = 0.98 and 0.99)")


def specs(FigureSpec):  # noqa: N803 - the class is passed in to avoid a circular import
    """The figure specs of this module (called by ``pgexact.figures``)."""
    return [
        FigureSpec(
            "classic_control", "Discretized Pendulum and MountainCar: V* and π* over the state grid",
            "Optimal value V* and optimal action of gymnasium's Pendulum-v1 (41×41 grid over θ ∈ [−π, π) and "
            "θ̇ ∈ [−8, 8], 5 torques, γ = 0.98) and MountainCar-v0 (61×61 grid, γ = 0.99), discretized by "
            "pgexact.mdps.pendulum / mountain_car (gymnasium's dynamics, multilinear interpolation of the next "
            "state onto the grid) and solved exactly by value iteration. The pendulum's swing-up spiral and the "
            "car's energy-pumping switching curve are visible. Sources: gymnasium classic_control (Pendulum-v1, "
            "MountainCar-v0; Moore 1990); Kushner & Dupuis (2001), 'Numerical Methods for Stochastic Control "
            "Problems in Continuous Time', ch. 5 (Markov chain approximation).",
            make_classic_control, (11.0, 8.0),
        ),
    ]
