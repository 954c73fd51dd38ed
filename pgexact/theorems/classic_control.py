r"""Theorems of the grid discretization of classic control (:mod:`pgexact.mdps.classic_control`).

* Multilinear interpolation reproduces affine functions: the transition of the discretized chain
  spreads the next state :math:`x'` over its cell's vertices with weights whose mean is
  :math:`x'`, so :math:`E[f(X')] = f(x')` for every affine f. Reference: f evaluated at the
  point itself (no weights). Instances: random non-uniform grids in 1..4 dimensions with 2..7
  vertices per axis, 50 points in the box, f with N(0, 1) coefficients.
* Richardson extrapolation (:func:`pgexact.mdps.classic_control.richardson`) is exact on
  :math:`J(h) = J_0 + c h^p`: three spacings give back :math:`J_0` and p. Reference: the
  :math:`J_0` and p the instance was made from. Instances: :math:`J_0 \sim N(0, 1)`,
  :math:`|c| \sim U[0.5, 2]` with a random sign, :math:`p \sim U[0.5, 2.5]`,
  :math:`h_0 \sim U[0.3, 1]` and two ratios :math:`h_{k}/h_{k+1} \sim U[1.3, 3]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mdps.classic_control import multilinear_weights, richardson
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []


@dataclass(frozen=True)
class AffineProblem:
    axes: tuple[np.ndarray, ...]
    points: np.ndarray
    c: np.ndarray
    b: float


def _affine_problem(rng: np.random.Generator) -> AffineProblem:
    D = int(rng.integers(1, 5))
    axes = tuple(np.sort(rng.uniform(-2, 2, int(rng.integers(2, 8)))) for _ in range(D))
    points = np.stack([rng.uniform(ax[0], ax[-1], 50) for ax in axes], axis=1)
    return AffineProblem(axes, points, rng.standard_normal(D), float(rng.standard_normal()))


def _vertices(ap: AffineProblem) -> np.ndarray:
    return np.stack(np.meshgrid(*ap.axes, indexing="ij"), axis=-1).reshape(-1, len(ap.axes))


def _interpolated(ap: AffineProblem) -> np.ndarray:
    idx, w = multilinear_weights(ap.points, ap.axes, (False,) * len(ap.axes))
    return (w * (_vertices(ap) @ ap.c + ap.b)[idx]).sum(axis=1)


def _nearest_vertex(ap: AffineProblem) -> np.ndarray:
    idx, w = multilinear_weights(ap.points, ap.axes, (False,) * len(ap.axes))
    near = idx[np.arange(len(idx)), np.argmax(w, axis=1)]
    return _vertices(ap)[near] @ ap.c + ap.b


def _swapped_weights(ap: AffineProblem) -> np.ndarray:
    idx, w = multilinear_weights(ap.points, ap.axes, (False,) * len(ap.axes))
    return (w[:, ::-1] * (_vertices(ap) @ ap.c + ap.b)[idx]).sum(axis=1)  # 1 - w on every axis


identity(
    id="mdps.interpolation_reproduces_affine_functions",
    statement=r"\sum_j w_j(x)\, f(x_j) = f(x) \text{ for affine } f, \quad w_j(x) = \prod_k \ell_{j_k}(x_k)",
    source="Kushner & Dupuis (2001), Numerical Methods for Stochastic Control Problems in Continuous Time, "
    "ch. 5 (local consistency of the Markov chain approximation: the chain's mean step is the drift)",
    reference="f evaluated at the point itself (no grid, no weights)",
    instance=_affine_problem,
    computed=_interpolated,
    expected=lambda ap: ap.points @ ap.c + ap.b,
    tolerance=1e-12,
    tolerance_reason="sums of at most 16 products of weights in [0, 1] and values of size <= 10: rounding "
    "<= 16 * 10 * 2.2e-16 relative to the floor 1 (observed <= 4e-15)",
    mutants={
        "rounding to the nearest vertex instead of interpolating": _nearest_vertex,
        "the weights of the two ends of a cell swapped (1 - w for w)": _swapped_weights,
    },
)


@dataclass(frozen=True)
class PowerLaw:
    J0: float
    c: float
    p: float
    h: np.ndarray

    def J(self) -> np.ndarray:
        return self.J0 + self.c * self.h**self.p


def _power_law(rng: np.random.Generator) -> PowerLaw:
    h0 = rng.uniform(0.3, 1.0)
    r1, r2 = rng.uniform(1.3, 3.0, 2)
    c = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0)
    return PowerLaw(float(rng.standard_normal()), float(c), float(rng.uniform(0.5, 2.5)),
                    np.array([h0, h0 / r1, h0 / (r1 * r2)]))


def _wrong_denominator(pl: PowerLaw) -> tuple[float, float]:
    J, h = pl.J(), pl.h
    _, p = richardson(J, h)
    return float(J[-1] + (J[-1] - J[-2]) / (h[-2] / h[-1]) ** p), p


identity(
    id="mdps.richardson_extrapolation",
    statement=r"J(h) = J_0 + c h^p \text{ on } h_0 > h_1 > h_2 \;\Rightarrow\; "
    r"\mathrm{richardson}(J(h_{0:3}), h_{0:3}) = (J_0, p)",
    source="Richardson (1911), Phil. Trans. R. Soc. A 210, sec. 1 (the deferred approach to the limit); "
    "Roache (1998), Verification and Validation in Computational Science, ch. 5",
    reference="the J_0 and p the instance is made from",
    instance=_power_law,
    computed=lambda pl: richardson(pl.J(), pl.h),
    expected=lambda pl: (pl.J0, pl.p),
    tolerance=1e-10,
    tolerance_reason="p is the root of a ratio of differences of size >= |c| h_2^p >= 0.5 * 0.037^2.5 = 1.3e-4: "
    "rounding 2.2e-16 relative to |J| <= 7 is amplified to <= 1.2e-11 in the ratio, and by 1/log(h_1/h_2) "
    "<= 4 in p (observed <= 2e-14 over 200 instances)",
    mutants={
        "the extrapolation denominator r^p instead of r^p - 1": _wrong_denominator,
        "order 1 assumed (two grids) where the order is p": lambda pl: (richardson(pl.J()[1:], pl.h[1:], order=1.0)[0], pl.p),
    },
)
