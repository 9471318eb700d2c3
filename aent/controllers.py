"""Coefficient controllers: explicit, checkpointable state updated once per global (rollout) step.

Every controller keeps its whole mutable state in one NamedTuple (``ctrl.state``, of type ``ctrl.State``), as
optax keeps a transformation's state: the pure transition ``ctrl.next_state(state, entropy) -> State`` returns a
new state and changes nothing else, and the settings (band, learning rate, box, ...) are fixed at construction,
given by keyword (``AEntCoef(init=..., band_low=..., band_high=..., lr=..., warmup=..., coef_min=..., coef_max=...)``).
The state's fields that callers read are read-only properties (``ctrl.coef``, ``ctrl.steps``, ...).
On top of that pair sit ``.value`` (the current float), ``.update(entropy) -> float`` (``state <- next_state``;
returns the new value) called exactly once per global step with the token-mean entropy measured during that
step's updates (EntroPIC's :class:`PIController` is the exception: once per micro-batch, with that micro-batch's
entropy), and ``state_dict()`` / ``load_state_dict(d)``: every field of the state, as plain Python floats and
ints (JSON-friendly), so that resume == uninterrupted and no field can be left out of a checkpoint.

| class            | paper                                  | value           | moves when entropy is low   |
|------------------|----------------------------------------|-----------------|-----------------------------|
| ConstantCoef     | fixed bonus                            | lambda          | never                       |
| AEntCoef         | AEnt, arXiv 2509.03493 Alg. 1          | lambda (box)    | up (below the band)         |
| SACCoef          | SAC, arXiv 1812.05905 Eq. 18           | exp(log lambda) | up                          |
| ThresholdCoef    | Skywork-OR1 arXiv 2505.22312; TRL      | lambda or 0     | up, and switched on         |
| PIController     | EntroPIC, arXiv 2511.15248             | alpha in [-1,1] | down (likely tokens less up)|
| PositiveWeight   | arXiv 2511.05993                       | w+ in [0, 1]    | down ("entropy" mode)       |
"""

from __future__ import annotations

import math
from typing import NamedTuple

from aent._controller import ConstantState, _box, _Controller, _finite

# EntroPIC's alpha and the positive-token weight: same contract, in their own module (re-exported here).
from aent.weight_controllers import (
    PIController,
    PIState,
    PositiveWeight,
    PositiveWeightState,
    positive_weight_schedule,
)

__all__ = ["AEntCoef", "AEntState", "ConstantCoef", "ConstantState", "PIController", "PIState", "PositiveWeight",
           "PositiveWeightState", "SACCoef", "SACState", "ThresholdCoef", "ThresholdState", "positive_weight_schedule"]


class AEntState(NamedTuple):
    coef: float
    """The coefficient lambda."""
    steps: int = 0


class SACState(NamedTuple):
    log_coef: float
    """log lambda (the learned parameter)."""
    steps: int = 0


class ThresholdState(NamedTuple):
    coef: float
    """The coefficient applied while the last entropy <= target."""
    last_entropy: float = math.inf
    """The last measured entropy (+inf before the first)."""
    steps: int = 0


class ConstantCoef(_Controller):
    """A fixed coefficient (fixed entropy bonus, fixed clamped bonus)."""

    State = ConstantState

    def __init__(self, *, value: float) -> None:
        self._value = _finite("value", value)
        if self._value < 0:
            raise ValueError(f"value must be >= 0, got {value!r}")
        self.state = ConstantState()

    @property
    def value(self) -> float:
        return self._value

    def next_state(self, state: ConstantState, entropy: float) -> ConstantState:
        """Count the step; the value never changes."""
        _finite("entropy", entropy)
        return state._replace(steps=state.steps + 1)


class AEntCoef(_Controller):
    """AEnt's adaptive coefficient: keep the clamped entropy inside a band [band_low, band_high].

    Implements arXiv 2509.03493 (Alg. 1; docs/methods.md): after global step t >= warmup,

        lambda <- clip(lambda - lr * [min(0, H - band_low) + max(0, H - band_high)], coef_min, coef_max).

    Below the band lambda grows, above it lambda shrinks, inside it lambda is constant (the fixed points).
    Steps 1..max(1, warmup) run with the initial lambda; the update after step ``warmup`` is the first that moves
    it (the authors' verl code: ``global_steps >= warmup`` with steps counted from 1). So the first
    ``max(0, warmup - 1)`` calls to :meth:`update` leave lambda at its initial value.
    """

    State = AEntState

    def __init__(self, *, init: float, band_low: float, band_high: float, lr: float, warmup: int, coef_min: float,
                 coef_max: float):
        coef = _finite("init", init)
        self.band_low, self.band_high = _finite("band_low", band_low), _finite("band_high", band_high)
        self.lr = _finite("lr", lr)
        self.coef_min, self.coef_max = _finite("coef_min", coef_min), _finite("coef_max", coef_max)
        if self.band_low > self.band_high:
            raise ValueError(f"need band_low <= band_high, got band_low={band_low!r}, band_high={band_high!r}")
        if self.lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr!r}")
        if isinstance(warmup, bool) or int(warmup) != warmup or warmup < 0:
            raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
        _box(self.coef_min, self.coef_max)
        if not self.coef_min <= coef <= self.coef_max:
            raise ValueError(f"init must be in [coef_min, coef_max] = [{coef_min}, {coef_max}], got {init!r}")
        self.warmup = int(warmup)
        self.state = AEntState(coef=coef)

    @property
    def value(self) -> float:
        return self.state.coef

    @property
    def coef(self) -> float:
        """The coefficient lambda (the state's ``coef``)."""
        return self.state.coef

    def next_state(self, state: AEntState, entropy: float) -> AEntState:
        """One AEnt step with the step's token-mean clamped entropy H."""
        h = _finite("entropy", entropy)
        steps, coef = state.steps + 1, state.coef
        if steps >= self.warmup:
            drive = min(0.0, h - self.band_low) + max(0.0, h - self.band_high)
            coef = float(min(self.coef_max, max(self.coef_min, coef - self.lr * drive)))
        return AEntState(coef=coef, steps=steps)


class SACCoef(_Controller):
    """SAC-style learned coefficient: one gradient step on log lambda per global step.

    SAC's temperature loss (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications",
    arXiv 1812.05905, Eq. 18, written for log lambda and entropy H = -E log pi) is

        J(log lambda) = log lambda * (H - H_target),   dJ/dlog lambda = H - H_target,

    so one plain gradient-descent step is  log lambda <- log lambda - lr * (H - H_target): lambda rises
    while H < H_target, falls while H > H_target and is stationary at H = H_target. (Writing the
    loss as -log lambda * (H - H_target) and descending it would move lambda the wrong way, so the sign here is
    SAC's.) ``coef_min`` / ``coef_max`` optionally box lambda; the default box (0, inf) is no box.
    """

    State = SACState

    def __init__(self, *, init: float, target: float, lr: float, coef_min: float = 0.0, coef_max: float = math.inf):
        init, self.target, self.lr = _finite("init", init), _finite("target", target), _finite("lr", lr)
        if init <= 0:
            raise ValueError(f"init must be > 0 (the coefficient is exp(log lambda)), got {init!r}")
        if self.lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr!r}")
        self.coef_min, self.coef_max = float(coef_min), float(coef_max)
        _box(self.coef_min, self.coef_max)
        if not self.coef_min <= init <= self.coef_max:
            raise ValueError(f"init must be in [coef_min, coef_max] = [{coef_min}, {coef_max}], got {init!r}")
        self.state = SACState(log_coef=math.log(init))

    @property
    def value(self) -> float:
        return math.exp(self.state.log_coef)

    @property
    def log_coef(self) -> float:
        """log lambda, the learned parameter (the state's ``log_coef``)."""
        return self.state.log_coef

    def next_state(self, state: SACState, entropy: float) -> SACState:
        """One gradient step on log lambda with the step's token-mean entropy."""
        h = _finite("entropy", entropy)
        log_c = state.log_coef - self.lr * (h - self.target)
        lo = math.log(self.coef_min) if self.coef_min > 0 else -math.inf
        hi = math.log(self.coef_max) if self.coef_max < math.inf else math.inf
        log_c = float(min(hi, max(lo, log_c)))
        return SACState(log_coef=log_c, steps=state.steps + 1)


class ThresholdCoef(_Controller):
    """Skywork-OR1 / TRL adaptive entropy: bonus only while entropy <= target, coefficient +- delta.

    Implements TRL's ``GRPOConfig(use_adaptive_entropy=True)`` rule (from Skywork-OR1, arXiv 2505.22312,
    Sec. 3.2.4): after each measurement H, ``coef <- min(coef + delta, coef_max)`` if H <= target, else
    ``coef <- max(coef - delta, coef_min)``; the coefficient applied in the next step is ``coef`` if the last
    H <= target and 0 otherwise. Before the first measurement H is taken as +inf, so no bonus is applied
    (as in TRL). TRL updates per optimizer step; here it is once per global step.
    """

    State = ThresholdState

    def __init__(self, *, init: float, target: float, delta: float, coef_min: float, coef_max: float):
        coef, self.target, self.delta = _finite("init", init), _finite("target", target), _finite("delta", delta)
        if self.delta < 0:
            raise ValueError(f"delta must be >= 0, got {delta!r}")
        self.coef_min, self.coef_max = _finite("coef_min", coef_min), _finite("coef_max", coef_max)
        _box(self.coef_min, self.coef_max)
        if not self.coef_min <= coef <= self.coef_max:
            raise ValueError(f"init must be in [coef_min, coef_max] = [{coef_min}, {coef_max}], got {init!r}")
        self.state = ThresholdState(coef=coef)

    @property
    def value(self) -> float:
        """The coefficient to apply now: ``coef`` while the last entropy <= target, else 0."""
        return self.state.coef if self.state.last_entropy <= self.target else 0.0

    @property
    def coef(self) -> float:
        """The coefficient applied while the last entropy <= target (the state's ``coef``)."""
        return self.state.coef

    @property
    def last_entropy(self) -> float:
        """The last measured entropy, +inf before the first (the state's ``last_entropy``)."""
        return self.state.last_entropy

    def next_state(self, state: ThresholdState, entropy: float) -> ThresholdState:
        h = _finite("entropy", entropy)
        if h <= self.target:
            coef = float(min(state.coef + self.delta, self.coef_max))
        else:
            coef = float(max(state.coef - self.delta, self.coef_min))
        return ThresholdState(coef=coef, last_entropy=h, steps=state.steps + 1)

