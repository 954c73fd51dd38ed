r"""Linear-Gaussian policies :math:`u \sim N(-K x, \Sigma_u)` for LQR.

The parameter vector is :math:`\theta = \mathrm{vec}(K)` in **row-major** order
(``theta[i * n + j] == K[i, j]``, i.e. ``K.reshape(-1)``), optionally followed by the ``m`` log
standard deviations :math:`\ell` of a diagonal :math:`\Sigma_u = \mathrm{diag}(e^{2\ell})`.
The deterministic linear policy :math:`u = -K x` is the zero-noise case (``noise_cov=None``).

Score (course notes, "Gaussian policy example"; written with the Jacobian on the left so that
the shapes work for vector actions):

.. math::

    \nabla_\theta \log \pi_\theta(u|x) = (\nabla_\theta \mu_\theta(x))^\top \Sigma_u^{-1} (u - \mu_\theta(x)),
    \qquad \mu_\theta(x) = -K x,

so :math:`\partial \log\pi / \partial K_{ij} = -[\Sigma_u^{-1}(u - \mu)]_i\, x_j`; and for the
log standard deviations :math:`\partial \log\pi / \partial \ell_i = (u - \mu)_i^2 / \sigma_i^2 - 1`
(the :math:`-\tfrac12 \log|\Sigma|` term the notes drop matters here).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from .._random import Seed, as_generator
from .._validation import as_float_array, check_covariance, check_positive_int, check_theta
from ..errors import NumericalError

__all__ = ["LinearGaussian"]


def _psd_sqrt(M: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (eigenvalues clipped at 0)."""
    lam, V = np.linalg.eigh(M)
    return (V * np.sqrt(np.clip(lam, 0.0, None))) @ V.T


class LinearGaussian:
    r"""Linear-Gaussian policy :math:`\pi_\theta(u|x) = N(u; -K x, \Sigma_u)`.

    Parameters
    ----------
    n_states : int
        State dimension n.
    n_actions : int
        Action dimension m.
    noise_cov : array_like of shape (m, m), or None
        Fixed action covariance :math:`\Sigma_u` (symmetric PSD). ``None`` (default) is the
        deterministic policy :math:`u = -Kx`, which has no score (its density does not exist).
    learn_log_std : bool
        If True, :math:`\theta = (\mathrm{vec}(K), \ell)` with :math:`\Sigma_u = \mathrm{diag}(e^{2\ell})`
        (``noise_cov`` must then be None).

    Attributes
    ----------
    n_params : int
        ``m * n`` (+ ``m`` with ``learn_log_std``).

    Examples
    --------
    >>> import numpy as np
    >>> pol = LinearGaussian(2, 1, noise_cov=[[0.25]])
    >>> theta = pol.params(np.array([[1.0, 2.0]]))
    >>> x = np.array([[1.0, -1.0]]); u = np.array([[1.5]])
    >>> # score = d/dtheta log N(u; -K x, 0.25), against a central difference
    >>> h = 1e-6; e = np.eye(2)
    >>> fd = [(pol.log_prob(theta + h * e[k], x, u) - pol.log_prob(theta - h * e[k], x, u))[0] / (2 * h)
    ...       for k in range(2)]
    >>> bool(np.allclose(pol.score(theta, x, u)[0], fd, rtol=1e-7))
    True
    """

    @np.errstate(under="ignore")
    def __init__(
        self,
        n_states: int,
        n_actions: int,
        *,
        noise_cov: Any = None,
        learn_log_std: bool = False,
    ) -> None:
        self.n_states = check_positive_int("n_states", n_states)
        self.n_actions = check_positive_int("n_actions", n_actions)
        if not isinstance(learn_log_std, bool):
            raise TypeError(f"learn_log_std must be a bool, got {learn_log_std!r}")
        self.learn_log_std = learn_log_std
        m = self.n_actions
        if learn_log_std:
            if noise_cov is not None:
                raise ValueError("noise_cov must be None when learn_log_std=True (Sigma_u comes from theta)")
            self._fixed_cov = None
        else:
            cov = np.zeros((m, m)) if noise_cov is None else check_covariance("noise_cov", noise_cov, m)
            cov.flags.writeable = False
            self._fixed_cov = cov
        self.n_gain = m * self.n_states
        self.n_params = self.n_gain + (m if learn_log_std else 0)

    def __repr__(self) -> str:
        kind = "learn_log_std=True" if self.learn_log_std else (
            "deterministic" if self.is_deterministic else "fixed noise_cov")
        return f"LinearGaussian(n_states={self.n_states}, n_actions={self.n_actions}, {kind})"

    # ------------------------------------------------------------------ parameters
    @property
    def is_deterministic(self) -> bool:
        """True for the zero-noise policy u = -K x (fixed covariance equal to 0)."""
        return self._fixed_cov is not None and not np.any(self._fixed_cov)

    def check_theta(self, theta: Any) -> np.ndarray:
        """Validate ``theta``: flat, float64, length ``n_params``, finite."""
        return check_theta(theta, self.n_params)

    def params(self, K: Any, log_std: Any = None) -> np.ndarray:
        r"""The parameter vector of gain ``K`` (m, n) (and ``log_std`` (m,) with ``learn_log_std``)."""
        K = as_float_array("K", K, shape=(self.n_actions, self.n_states))
        if self.learn_log_std:
            if log_std is None:
                raise ValueError("log_std is required (shape (m,)) when learn_log_std=True")
            ls = as_float_array("log_std", log_std, shape=(self.n_actions,))
            return np.concatenate([K.reshape(-1), ls])
        if log_std is not None:
            raise ValueError("log_std given but learn_log_std=False")
        return K.reshape(-1).copy()

    def gain(self, theta: Any) -> np.ndarray:
        """The gain K, shape (m, n)."""
        theta = self.check_theta(theta)
        return theta[: self.n_gain].reshape(self.n_actions, self.n_states).copy()

    @np.errstate(under="ignore")
    def action_cov(self, theta: Any) -> np.ndarray:
        r"""The action covariance :math:`\Sigma_u`, shape (m, m)."""
        theta = self.check_theta(theta)
        if self.learn_log_std:
            log_std = theta[self.n_gain:]
            with np.errstate(over="ignore", under="ignore"):
                var = np.exp(2.0 * log_std)
            bad = ~(np.isfinite(var) & (var > 0.0))
            if bad.any():
                i = int(np.argmax(bad))
                raise NumericalError(
                    f"the action variance exp(2 log_std) of theta[{self.n_gain + i}] (log_std[{i}] = "
                    f"{log_std[i]:.6g}) is not a positive float64 (|log_std| must stay below about "
                    "354): choose log standard deviations in a representable range"
                )
            return np.diag(var)
        return np.array(self._fixed_cov)

    # ------------------------------------------------------------------ distribution
    def _x(self, x: Any) -> np.ndarray:
        x = as_float_array("x", x)
        if x.ndim < 1 or x.shape[-1] != self.n_states:
            raise ValueError(f"x must have shape (..., n_states={self.n_states}), got {x.shape}")
        return x

    def _u(self, u: Any, x: np.ndarray) -> np.ndarray:
        u = as_float_array("u", u)
        if u.shape != x.shape[:-1] + (self.n_actions,):
            raise ValueError(
                f"u must have shape {x.shape[:-1] + (self.n_actions,)} (batch of x, n_actions), got {u.shape}"
            )
        return u

    @np.errstate(under="ignore")
    def mean(self, theta: Any, x: Any) -> np.ndarray:
        r""":math:`\mu_\theta(x) = -K x` for a batch ``x`` (..., n); returns (..., m)."""
        K = self.gain(theta)
        return -(self._x(x) @ K.T)

    def _prec_times(self, theta: np.ndarray, diff: np.ndarray) -> np.ndarray:
        cov = self.action_cov(theta)
        try:
            cf = scipy.linalg.cho_factor(cov, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            raise ValueError(
                "the policy's action covariance is singular (deterministic or degenerate policy): "
                "its density, log_prob and score do not exist"
            ) from None
        flat = diff.reshape(-1, self.n_actions).T
        return scipy.linalg.cho_solve(cf, flat, check_finite=False).T.reshape(diff.shape)

    @np.errstate(under="ignore")
    def log_prob(self, theta: Any, x: Any, u: Any) -> np.ndarray:
        r""":math:`\log N(u; -Kx, \Sigma_u)` for batches ``x`` (..., n), ``u`` (..., m); returns (...)."""
        theta = self.check_theta(theta)
        x = self._x(x)
        u = self._u(u, x)
        diff = u - self.mean(theta, x)
        z = self._prec_times(theta, diff)
        cov = self.action_cov(theta)
        _, logdet = np.linalg.slogdet(cov)
        m = self.n_actions
        return -0.5 * np.sum(diff * z, axis=-1) - 0.5 * logdet - 0.5 * m * np.log(2.0 * np.pi)

    @np.errstate(under="ignore")
    def score(self, theta: Any, x: Any, u: Any) -> np.ndarray:
        r"""Score :math:`\nabla_\theta \log\pi_\theta(u|x)`, shape (..., n_params).

        .. math::

            \frac{\partial \log\pi}{\partial K_{ij}} = -[\Sigma_u^{-1}(u-\mu)]_i\, x_j, \qquad
            \frac{\partial \log\pi}{\partial \ell_i} = \frac{(u-\mu)_i^2}{\sigma_i^2} - 1

        Raises ``ValueError`` for a deterministic (or degenerate) policy.
        """
        theta = self.check_theta(theta)
        x = self._x(x)
        u = self._u(u, x)
        diff = u - self.mean(theta, x)
        z = self._prec_times(theta, diff)
        gK = -(z[..., :, None] * x[..., None, :]).reshape(x.shape[:-1] + (self.n_gain,))
        if not self.learn_log_std:
            return gK
        return np.concatenate([gK, diff * z - 1.0], axis=-1)

    @np.errstate(under="ignore")
    def mean_jacobian_t(self, theta: Any, x: Any, g: Any) -> np.ndarray:
        r""":math:`(\nabla_\theta \mu_\theta(x))^\top g`, shape (..., n_params), for ``g`` (..., m).

        With :math:`\mu = -Kx`: entry :math:`(i, j)` of the gain block is :math:`-g_i x_j`; the
        log-std block is 0 (the mean does not depend on it). This is the chain-rule factor of the
        deterministic policy gradient :math:`\nabla_\theta\mu^\top \nabla_u Q`.
        """
        theta = self.check_theta(theta)
        x = self._x(x)
        g = as_float_array("g", g)
        if g.shape != x.shape[:-1] + (self.n_actions,):
            raise ValueError(f"g must have shape {x.shape[:-1] + (self.n_actions,)}, got {g.shape}")
        gK = -(g[..., :, None] * x[..., None, :]).reshape(x.shape[:-1] + (self.n_gain,))
        if not self.learn_log_std:
            return gK
        return np.concatenate([gK, np.zeros(x.shape[:-1] + (self.n_actions,))], axis=-1)

    @np.errstate(under="ignore")
    def sample(self, theta: Any, x: Any, seed: Seed) -> np.ndarray:
        r"""Draw :math:`u \sim N(-Kx, \Sigma_u)` for a batch ``x`` (..., n); returns (..., m)."""
        theta = self.check_theta(theta)
        x = self._x(x)
        rng = as_generator(seed)
        mu = self.mean(theta, x)
        L = _psd_sqrt(self.action_cov(theta))
        return mu + rng.standard_normal(mu.shape) @ L.T
