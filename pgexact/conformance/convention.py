r"""The conventions a policy-gradient library's update can follow (:class:`Convention`, :data:`PRESETS`).

A library's update of one batch is the ascent direction :math:`-\partial L/\partial\theta` of its
loss, a mean over the ``n_envs * n_steps`` rows of its rollout buffer,

.. math::

    L = -\frac{1}{n_{\text{envs}} n_{\text{steps}}} \sum_{\text{rows } j}
        \omega_j \bigl(\hat A_j \log\pi_\theta(a_j|s_j) + c_{\text{ent}}\, H(\pi_\theta(\cdot|s_j))\bigr),

with GAE(λ) advantages :math:`\hat A_j = \delta_j + \gamma\lambda (1 - \text{cut}_j)\hat A_{j+1}`
computed from a critic's values (Schulman et al. 2016, "High-dimensional continuous control using
generalized advantage estimation", eq. 16). The conventions fix what the rows are and how
:math:`\delta_j`, the cuts and the row weights :math:`\omega_j` are formed:

``weighting``
    ``"uniform"`` (:math:`\omega_j = 1`, every library) or ``"discounted"``
    (:math:`\omega_j = \gamma^{k_j}`, :math:`k_j` the time in episode of row j: the policy
    gradient theorem's weighting; course notes "Policy gradient methods", section "The policy
    gradient theorem").
``truncation`` — the row whose step hits the time limit (``truncated`` and not ``terminated``):
    ``"bootstrap"`` :math:`\delta = r + \gamma V(s_T) - V(s)` with :math:`s_T` the final
    observation, cut (correct: the time limit is not part of the task);
    ``"terminate"`` :math:`\delta = r - V(s)`, cut (truncation treated as termination);
    ``"reset_obs"`` :math:`\delta = r + \gamma V(o') - V(s)`, cut, with :math:`o'` the
    observation the environment returned (the reset observation under same-step autoreset);
    ``"cross"`` :math:`\delta = r + \gamma V(o') - V(s)` and no cut (GAE runs on into the next
    episode).
``autoreset`` — what a vector environment does when an episode ends:
    ``"same_step"`` (Stable-Baselines3's VecEnv, gymnasium's ``SAME_STEP``): the ending step returns
    the reset observation, the final one in ``info``; ``"next_step"`` (gymnasium ≥ 1.0's default):
    the ending step returns the final observation, and the *next* step ignores the action and
    returns the reset observation with reward 0 and no done flag — a row the update counts as an
    ordinary transition (:math:`\delta = \gamma V(s_0) - V(s_T)`, no cut, its action's score and
    entropy included); ``"disabled"``: the loop resets itself with the final observation at hand,
    which gives the rows of ``"same_step"``.
``bootstrap_end``
    The last row of the buffer, when not cut, uses :math:`\gamma V(o')` (True) or 0 (False).
``normalize_advantages``
    ``False``, ``"batch"`` or ``"minibatch"``: advantages standardized before the loss. The exact
    expectation of a normalized update is not computed (:func:`~pgexact.conformance.expected_update`
    gives the un-normalized one; the scale-free test checks the direction).

A terminated row (entering a terminal state) always has :math:`\delta = r - V(s)` and a cut.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .._validation import check_bool, check_positive_int, check_real

__all__ = ["Convention", "PRESETS", "WEIGHTINGS", "TRUNCATIONS", "AUTORESETS", "NORMALIZATIONS"]

WEIGHTINGS = ("uniform", "discounted")
TRUNCATIONS = ("bootstrap", "terminate", "reset_obs", "cross")
AUTORESETS = ("same_step", "next_step", "disabled")
NORMALIZATIONS = (False, "batch", "minibatch")


def _check_choice(name: str, value: Any, choices: tuple) -> Any:
    for c in choices:
        if type(value) is type(c) and value == c:
            return c
    raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")


def _check_unit(name: str, value: Any) -> float:
    v = check_real(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {v}")
    return v


@dataclass(frozen=True)
class Convention:
    r"""How a library forms one batch's update (see the module docstring for each field's formula).

    Parameters
    ----------
    weighting : {"uniform", "discounted"}
    truncation : {"bootstrap", "terminate", "reset_obs", "cross"}
    autoreset : {"same_step", "next_step", "disabled"}
    lam : float in [0, 1]
        GAE's λ.
    gamma : float in [0, 1]
        The discount the library uses in GAE (and in the ``"discounted"`` weighting).
    ent_coef : float
        Coefficient of the entropy bonus in the loss.
    normalize_advantages : {False, "batch", "minibatch"}
    bootstrap_end : bool
        Bootstrap :math:`\gamma V(o')` at the buffer's last row (unless that row is cut).
    n_envs, n_steps : int
        Environments run in parallel and rows per environment per batch.
    time_limit : int
        Steps after which an episode is truncated (``max_episode_steps``).
    name : str
        A label for reports.

    Examples
    --------
    >>> c = Convention.exact(gamma=0.8, time_limit=10, n_envs=16, n_steps=32)
    >>> c.weighting, c.truncation, c.autoreset
    ('discounted', 'bootstrap', 'same_step')
    >>> PRESETS["sb3-ppo"].lam, PRESETS["sb3-ppo"].normalize_advantages
    (0.95, 'minibatch')
    >>> c.replace(truncation="cross").truncation
    'cross'
    """

    weighting: str = "uniform"
    truncation: str = "bootstrap"
    autoreset: str = "same_step"
    lam: float = 0.95
    gamma: float = 0.99
    ent_coef: float = 0.0
    normalize_advantages: Any = False
    bootstrap_end: bool = True
    n_envs: int = 1
    n_steps: int = 2048
    time_limit: int = 1000
    name: str = ""

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("weighting", _check_choice("weighting", self.weighting, WEIGHTINGS))
        set_("truncation", _check_choice("truncation", self.truncation, TRUNCATIONS))
        set_("autoreset", _check_choice("autoreset", self.autoreset, AUTORESETS))
        set_("lam", _check_unit("lam", self.lam))
        set_("gamma", _check_unit("gamma", self.gamma))
        set_("ent_coef", check_real("ent_coef", self.ent_coef))
        norm = self.normalize_advantages
        if isinstance(norm, (bool,)) and norm is True:
            raise ValueError("normalize_advantages must be False, 'batch' or 'minibatch'; got True "
                             "(say at which level: 'batch' or 'minibatch')")
        set_("normalize_advantages", _check_choice("normalize_advantages", norm, NORMALIZATIONS))
        set_("bootstrap_end", check_bool("bootstrap_end", self.bootstrap_end))
        set_("n_envs", check_positive_int("n_envs", self.n_envs))
        set_("n_steps", check_positive_int("n_steps", self.n_steps))
        set_("time_limit", check_positive_int("time_limit", self.time_limit))
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")

    @classmethod
    def exact(cls, *, gamma: float, time_limit: int, n_envs: int = 1, n_steps: int = 2048,
              lam: float = 1.0) -> "Convention":
        r"""The correct mathematics: rows weighted by :math:`\gamma^k`, time limits bootstrapped.

        Rows weighted by :math:`\gamma^{k}`, truncations bootstrapped with :math:`V(s_T)`, the
        buffer's end bootstrapped, no entropy bonus, no normalization. With the exact critic
        the expected advantage of every row is :math:`A^\pi(s, a)` whatever λ, and the expected
        update is the policy gradient of the episode truncated at ``time_limit`` (course notes
        "Policy gradient methods", section "Advantage estimation").

        Examples
        --------
        >>> Convention.exact(gamma=0.9, time_limit=5).name
        'exact'
        """
        return cls(weighting="discounted", truncation="bootstrap", autoreset="same_step", lam=lam,
                   gamma=gamma, ent_coef=0.0, normalize_advantages=False, bootstrap_end=True,
                   n_envs=n_envs, n_steps=n_steps, time_limit=time_limit, name="exact")

    def replace(self, **changes: Any) -> "Convention":
        """A copy with ``changes`` applied (validated like the constructor).

        Examples
        --------
        >>> Convention().replace(lam=1.0).lam
        1.0
        """
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"Convention has no field {unknown[0]!r}; fields: "
                            + ", ".join(f.name for f in dataclasses.fields(self)))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict.

        Examples
        --------
        >>> Convention().to_dict()["truncation"]
        'bootstrap'
        """
        return dataclasses.asdict(self)

    def label(self) -> str:
        """A short label of the fields that tell conventions apart.

        Examples
        --------
        >>> Convention().label()
        'uniform/bootstrap/same_step/end=V'
        """
        return (f"{self.weighting}/{self.truncation}/{self.autoreset}/"
                f"end={'V' if self.bootstrap_end else '0'}")


def _preset(name: str, **kw: Any) -> Convention:
    return Convention(name=name, **kw)


#: Each library's documented defaults (its default hyperparameters and what its collection and
#: buffer code does at a time limit with gymnasium ≥ 1.0). ``n_envs``/``n_steps``/``time_limit``
#: are the library's default rollout sizes where it has them; an audit replaces them (and γ, λ)
#: by the settings it ran with.
PRESETS: dict[str, Convention] = {
    # stable_baselines3/ppo/ppo.py (gamma 0.99, gae_lambda 0.95, ent_coef 0.0, normalize_advantage
    # True per minibatch of batch_size 64); common/on_policy_algorithm.py collect_rollouts adds
    # gamma * V(infos[i]["terminal_observation"]) to the reward of a truncated step; VecEnv resets
    # in the same step; RolloutBuffer.compute_returns_and_advantage bootstraps V(new_obs) at the end.
    "sb3-ppo": _preset("sb3-ppo", lam=0.95, gamma=0.99, ent_coef=0.0, normalize_advantages="minibatch",
                       truncation="bootstrap", autoreset="same_step", n_steps=2048),
    # stable_baselines3/a2c/a2c.py: gae_lambda 1.0, ent_coef 0.0, normalize_advantage False, n_steps 5.
    "sb3-a2c": _preset("sb3-a2c", lam=1.0, gamma=0.99, ent_coef=0.0, normalize_advantages=False,
                       truncation="bootstrap", autoreset="same_step", n_steps=5),
    # cleanrl/ppo.py: gamma 0.99, gae_lambda 0.95, ent_coef 0.01, norm_adv per minibatch,
    # next_done = terminations | truncations (a truncation is a termination), 4 envs x 128 steps,
    # gym.vector.SyncVectorEnv (gymnasium >= 1.0: next-step autoreset).
    "cleanrl-ppo": _preset("cleanrl-ppo", lam=0.95, gamma=0.99, ent_coef=0.01,
                           normalize_advantages="minibatch", truncation="terminate",
                           autoreset="next_step", n_envs=4, n_steps=128),
    # torchrl 0.14: ClipPPOLoss(entropy_coeff=0.01, normalize_advantage=False) and its default GAE
    # value estimator (lmbda 0.95, average_gae False) mask V(next obs) only where next.terminated and
    # cut at next.done, so a truncation is bootstrapped with V(final obs); the Collector keeps the
    # final observation in "next" and resets the ended env itself (same-step rows); the buffer's
    # last row is bootstrapped (set_truncated=False). Confirmed by the torchrl-ppo driver's audit.
    "torchrl-ppo": _preset("torchrl-ppo", lam=0.95, gamma=0.99, ent_coef=0.01, normalize_advantages=False,
                           truncation="bootstrap", autoreset="same_step"),
    # tianshou PPOPolicy: gae_lambda 0.95, ent_coef 0.01, advantage_normalization True (per
    # minibatch); the buffer keeps obs_next (the final observation) and masks V only on terminated.
    "tianshou-ppo": _preset("tianshou-ppo", lam=0.95, gamma=0.99, ent_coef=0.01,
                            normalize_advantages="minibatch", truncation="bootstrap", autoreset="same_step"),
    # skrl 2.1.1 PPO defaults: discount_factor 0.99, lambda 0.95, entropy_loss_scale 0.0,
    # time_limit_bootstrap False: compute_gae cuts GAE only at terminated, so at a truncation it runs
    # on into the next row; its gymnasium wrapper leaves autoreset to gymnasium (next-step in >= 1.0),
    # so that row is the reset row and GAE crosses into the next episode (measured by the skrl-ppo
    # driver's audit). compute_gae normalizes the advantages of the whole memory.
    "skrl-ppo": _preset("skrl-ppo", lam=0.95, gamma=0.99, ent_coef=0.0, normalize_advantages="batch",
                        truncation="cross", autoreset="next_step", n_steps=16),
    # rlax: functions only, no defaults; the driver passes discount_t = gamma * (1 - done) with
    # done = terminated | truncated to truncated_generalized_advantage_estimation.
    "rlax": _preset("rlax", lam=0.95, gamma=0.99, ent_coef=0.0, normalize_advantages=False,
                    truncation="terminate", autoreset="same_step"),
}

