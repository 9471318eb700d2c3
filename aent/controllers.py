"""Coefficient controllers: explicit, checkpointable state updated once per global (rollout) step.

Every controller keeps its whole mutable state in one NamedTuple (``ctrl.state``, of type ``ctrl.State``), as
optax keeps a transformation's state: the pure transition ``ctrl.next_state(state, entropy) -> State`` returns a
new state and changes nothing else, and the settings (band, learning rate, box, ...) are fixed at construction.
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
from typing import Any, NamedTuple

__all__ = ["AEntCoef", "AEntState", "ConstantCoef", "ConstantState", "PIController", "PIState", "PositiveWeight",
           "PositiveWeightState", "SACCoef", "SACState", "ThresholdCoef", "ThresholdState", "positive_weight_schedule"]


def _finite(name: str, x: float) -> float:
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return x


def _box(lo: float, hi: float, lo_name: str = "min", hi_name: str = "max") -> None:
    if not (lo >= 0 and lo <= hi):
        raise ValueError(f"need 0 <= {lo_name} <= {hi_name}, got {lo_name}={lo!r}, {hi_name}={hi!r}")


class ConstantState(NamedTuple):
    steps: int = 0
    """Global steps counted so far."""


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


class PIState(NamedTuple):
    integral: float = 0.0
    """Sum of the errors so far."""
    alpha: float = 0.0
    """alpha of the last update."""
    steps: int = 0


class PositiveWeightState(NamedTuple):
    weight: float
    """w+ of the next global step."""
    steps: int = 0


class _Controller:
    """Shared plumbing over ``state`` (a NamedTuple of type ``State``) and the pure ``next_state``.

    The state's fields read as attributes (``ctrl.coef`` is ``ctrl.state.coef``); assigning one replaces the
    state with an updated copy, so the state stays the single place that holds what changes.
    """

    State: type = ConstantState
    state: Any

    def __getattr__(self, name: str) -> Any:  # only reached when normal lookup fails
        st = self.__dict__.get("state")
        if st is not None and name in type(st)._fields:
            return getattr(st, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        st = self.__dict__.get("state")
        if st is not None and name in type(st)._fields:
            object.__setattr__(self, "state", st._replace(**{name: value}))
        else:
            object.__setattr__(self, name, value)

    @property
    def value(self) -> float:
        raise NotImplementedError

    def next_state(self, state: Any, entropy: float) -> Any:
        """The state after one update with ``entropy`` (pure: neither ``self`` nor ``state`` changes)."""
        raise NotImplementedError

    def update(self, entropy: float) -> float:
        """``state <- next_state(state, entropy)``; returns the new :attr:`value`."""
        self.state = self.next_state(self.state, entropy)
        return self.value

    def state_dict(self) -> dict[str, Any]:
        """``{"type": class name, **every field of the state}`` (plain floats and ints)."""
        return {"type": type(self).__name__, **self.state._asdict()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (every field of the state must be present)."""
        if d.get("type") != type(self).__name__:
            raise ValueError(f"state_dict is for {d.get('type')!r}, not {type(self).__name__}")
        fields = self.State._fields
        missing = [k for k in fields if k not in d]
        if missing:
            raise ValueError(f"{type(self).__name__} state_dict lacks {missing}")
        self.state = self.State(*(type(getattr(self.state, k))(d[k]) for k in fields))


class ConstantCoef(_Controller):
    """A fixed coefficient (fixed entropy bonus, fixed clamped bonus)."""

    State = ConstantState

    def __init__(self, value: float) -> None:
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
    """AEnt's adaptive coefficient: keep the clamped entropy inside a band [low, high].

    Implements arXiv 2509.03493 (Alg. 1; docs/methods.md): after global step t >= warmup,

        lambda <- clip(lambda - lr * [min(0, H - low) + max(0, H - high)], min, max).

    Below the band lambda grows, above it lambda shrinks, inside it lambda is constant (the fixed points).
    Steps 1..max(1, warmup) run with the initial lambda; the update after step ``warmup`` is the first that moves
    it (the authors' verl code: ``global_steps >= warmup`` with steps counted from 1). So the first
    ``max(0, warmup - 1)`` calls to :meth:`update` leave lambda at its initial value.
    """

    State = AEntState

    def __init__(self, init: float, low: float, high: float, lr: float, warmup: int, min: float, max: float):
        coef, self.low, self.high = _finite("init", init), _finite("low", low), _finite("high", high)
        self.lr, self.min, self.max = _finite("lr", lr), _finite("min", min), _finite("max", max)
        if self.low > self.high:
            raise ValueError(f"need low <= high, got low={low!r}, high={high!r}")
        if self.lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr!r}")
        if isinstance(warmup, bool) or int(warmup) != warmup or warmup < 0:
            raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
        _box(self.min, self.max)
        if not self.min <= coef <= self.max:
            raise ValueError(f"init must be in [min, max] = [{min}, {max}], got {init!r}")
        self.warmup = int(warmup)
        self.state = AEntState(coef=coef)

    @property
    def value(self) -> float:
        return self.state.coef

    def next_state(self, state: AEntState, entropy: float) -> AEntState:
        """One AEnt step with the step's token-mean clamped entropy H."""
        h = _finite("entropy", entropy)
        steps, coef = state.steps + 1, state.coef
        if steps >= self.warmup:
            drive = min(0.0, h - self.low) + max(0.0, h - self.high)
            coef = float(min(self.max, max(self.min, coef - self.lr * drive)))
        return AEntState(coef=coef, steps=steps)


class SACCoef(_Controller):
    """SAC-style learned coefficient: one gradient step on log lambda per global step.

    SAC's temperature loss (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications",
    arXiv 1812.05905, Eq. 18, written for log lambda and entropy H = -E log pi) is

        J(log lambda) = log lambda * (H - H_target),   dJ/dlog lambda = H - H_target,

    so one plain gradient-descent step is  log lambda <- log lambda - lr * (H - H_target): lambda rises
    while H < H_target, falls while H > H_target and is stationary at H = H_target. (Writing the
    loss as -log lambda * (H - H_target) and descending it would move lambda the wrong way, so the sign here is
    SAC's.) ``min`` / ``max`` optionally box lambda; the default box (0, inf) is no box.
    """

    State = SACState

    def __init__(self, init: float, target: float, lr: float, min: float = 0.0, max: float = math.inf):
        init, self.target, self.lr = _finite("init", init), _finite("target", target), _finite("lr", lr)
        if init <= 0:
            raise ValueError(f"init must be > 0 (the coefficient is exp(log lambda)), got {init!r}")
        if self.lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr!r}")
        self.min, self.max = float(min), float(max)
        _box(self.min, self.max)
        if not self.min <= init <= self.max:
            raise ValueError(f"init must be in [min, max] = [{min}, {max}], got {init!r}")
        self.state = SACState(log_coef=math.log(init))

    @property
    def value(self) -> float:
        return math.exp(self.state.log_coef)

    def next_state(self, state: SACState, entropy: float) -> SACState:
        """One gradient step on log lambda with the step's token-mean entropy."""
        h = _finite("entropy", entropy)
        log_c = state.log_coef - self.lr * (h - self.target)
        lo = math.log(self.min) if self.min > 0 else -math.inf
        log_c = float(min(math.log(self.max) if self.max < math.inf else math.inf, max(lo, log_c)))
        return SACState(log_coef=log_c, steps=state.steps + 1)


class ThresholdCoef(_Controller):
    """Skywork-OR1 / TRL adaptive entropy: bonus only while entropy <= target, coefficient +- delta.

    Implements TRL's ``GRPOConfig(use_adaptive_entropy=True)`` rule (from Skywork-OR1, arXiv 2505.22312,
    Sec. 3.2.4): after each measurement H, ``coef <- min(coef + delta, max)`` if H <= target, else
    ``coef <- max(coef - delta, min)``; the coefficient applied in the next step is ``coef`` if the last
    H <= target and 0 otherwise. Before the first measurement H is taken as +inf, so no bonus is applied
    (as in TRL). TRL updates per optimizer step; here it is once per global step.
    """

    State = ThresholdState

    def __init__(self, init: float, target: float, delta: float, min: float, max: float):
        coef, self.target, self.delta = _finite("init", init), _finite("target", target), _finite("delta", delta)
        if self.delta < 0:
            raise ValueError(f"delta must be >= 0, got {delta!r}")
        self.min, self.max = _finite("min", min), _finite("max", max)
        _box(self.min, self.max)
        if not self.min <= coef <= self.max:
            raise ValueError(f"init must be in [min, max] = [{min}, {max}], got {init!r}")
        self.state = ThresholdState(coef=coef)

    @property
    def value(self) -> float:
        """The coefficient to apply now: ``coef`` while the last entropy <= target, else 0."""
        return self.state.coef if self.state.last_entropy <= self.target else 0.0

    def next_state(self, state: ThresholdState, entropy: float) -> ThresholdState:
        h = _finite("entropy", entropy)
        if h <= self.target:
            coef = float(min(state.coef + self.delta, self.max))
        else:
            coef = float(max(state.coef - self.delta, self.min))
        return ThresholdState(coef=coef, last_entropy=h, steps=state.steps + 1)


class PIController(_Controller):
    """EntroPIC's proportional-integral controller of the entropy-steering coefficient alpha.

    Implements arXiv 2511.15248 (Sec. 3), updated once per micro-batch with that micro-batch's token-mean entropy
    H_t: with error e_t = H_t - H_target and the integral of the *previous* errors I_{t-1} = sum_{s<t} e_s,

        alpha_t = clip(kp * e_t + ki * I_{t-1}, -1, 1),    then I_t = I_{t-1} + e_t.

    alpha_t multiplies EntroPIC's term (:func:`aent.entropic_term`) in the same micro-batch's loss. Entropy above
    target -> alpha > 0 -> likely tokens are pushed up -> entropy falls, and vice versa; at H = H_target the
    integral (hence alpha) is stationary. ``integral_limit`` optionally clamps |I| (anti-windup; not in the paper).
    """

    State = PIState

    def __init__(self, kp: float, ki: float, target: float, integral_limit: float | None = None):
        self.kp, self.ki, self.target = _finite("kp", kp), _finite("ki", ki), _finite("target", target)
        if self.kp < 0 or self.ki < 0:
            raise ValueError(f"kp and ki must be >= 0, got kp={kp!r}, ki={ki!r}")
        if integral_limit is not None and not integral_limit > 0:
            raise ValueError(f"integral_limit must be None or > 0, got {integral_limit!r}")
        self.integral_limit = integral_limit
        self.state = PIState()

    @property
    def value(self) -> float:
        """The alpha of the last update (0 before the first)."""
        return self.state.alpha

    def next_state(self, state: PIState, entropy: float) -> PIState:
        """alpha for this micro-batch from its token-mean entropy, then the integral takes in the error."""
        err = _finite("entropy", entropy) - self.target
        alpha = float(min(1.0, max(-1.0, self.kp * err + self.ki * state.integral)))
        integral = state.integral + err
        if self.integral_limit is not None:
            integral = float(min(self.integral_limit, max(-self.integral_limit, integral)))
        return PIState(integral=integral, alpha=alpha, steps=state.steps + 1)


def positive_weight_schedule(mode: str, step: int, total_steps: int, epochs: int | None = None,
                             start: float = 0.0, end: float = 1.0) -> float:
    """Weight w+ of the positive-advantage tokens at global step ``step`` of an upward schedule.

    Implements the two schedules of arXiv 2511.05993 (Positive-Advantage Reweighting), from ``start`` (paper: 0)
    to ``end`` (paper: 1) over a run of S = ``total_steps`` global steps, steps counted from 1:

    - ``stage``: start for the first half, then linear to end:  f(s) = clip(2 s / S - 1, 0, 1);
    - ``epoch``: the run is E = ``epochs`` equal epochs, e(s) = min(E, ceil(s E / S)), f(s) = (e - 1) / (E - 1).

    w+ = start + (end - start) f(s). Steps past S keep f = 1.

    Args:
        mode: "stage" or "epoch".
        step: global step s >= 1.
        total_steps: S >= 1.
        epochs: E >= 2 (mode "epoch" only).
        start, end: weights in [0, 1] at the first and last step.

    Returns:
        w+ (float).

    Example:
        >>> tuple(positive_weight_schedule("stage", s, 4) for s in (1, 2, 3, 4))
        (0.0, 0.0, 0.5, 1.0)
        >>> tuple(positive_weight_schedule("epoch", s, 6, epochs=3) for s in range(1, 7))
        (0.0, 0.0, 0.5, 0.5, 1.0, 1.0)
    """
    if isinstance(step, bool) or int(step) != step or step < 1:
        raise ValueError(f"step must be an int >= 1, got {step!r}")
    if isinstance(total_steps, bool) or int(total_steps) != total_steps or total_steps < 1:
        raise ValueError(f"total_steps must be an int >= 1, got {total_steps!r}")
    if mode == "stage":
        frac = min(1.0, max(0.0, 2.0 * step / total_steps - 1.0))
    elif mode == "epoch":
        if epochs is None or isinstance(epochs, bool) or int(epochs) != epochs or epochs < 2:
            raise ValueError(f"epochs must be an int >= 2 for mode='epoch', got {epochs!r}")
        e = min(epochs, -(-step * epochs // total_steps))  # ceil(s E / S) in integers
        frac = (e - 1) / (epochs - 1)
    else:
        raise ValueError(f"mode must be 'stage' or 'epoch', got {mode!r}")
    return float(start + (end - start) * frac)


class PositiveWeight(_Controller):
    """Weight w+ of positive-advantage tokens (arXiv 2511.05993, Positive-Advantage Reweighting).

    ``value`` is the weight of the next global step (step ``steps + 1``, counted from 1). Modes:
      - ``fixed``: w+ = init.
      - ``scheduled``: linear from ``init`` (step 1) to ``final`` (step ``schedule_steps + 1``), then ``final``.
      - ``stage`` / ``epoch``: the paper's upward schedules over ``schedule_steps`` steps (and ``epochs`` epochs),
        from ``init`` to ``final`` (paper: 0 to 1), see :func:`positive_weight_schedule`.
      - ``entropy``: w+ <- clip(w+ - delta, 0, 1) when H < target, clip(w+ + delta, 0, 1) when H > target,
        unchanged at H = target (paper: from w+ = 0). Lowering w+ weakens the entropy-lowering positive updates,
        so entropy below target lowers w+ (raising entropy) and entropy above target raises it.
    """

    MODES = ("fixed", "scheduled", "stage", "epoch", "entropy")
    State = PositiveWeightState

    def __init__(self, mode: str, init: float, target: float | None = None, delta: float = 0.05,
                 final: float | None = None, schedule_steps: int | None = None, epochs: int | None = None):
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        weight, self.mode, self.delta = _finite("init", init), mode, _finite("delta", delta)
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"init must be in [0, 1], got {init!r}")
        if not 0.0 <= self.delta <= 1.0:
            raise ValueError(f"delta must be in [0, 1], got {delta!r}")
        if mode == "entropy" and target is None:
            raise ValueError("target must be given (a number of nats) for mode='entropy'")
        if mode in ("scheduled", "stage", "epoch"):
            if final is None or not 0.0 <= final <= 1.0:
                raise ValueError(f"final must be in [0, 1] for mode={mode!r}, got {final!r}")
            if schedule_steps is None or isinstance(schedule_steps, bool) or int(schedule_steps) < 1:
                raise ValueError(f"schedule_steps must be an int >= 1 for mode={mode!r}, got {schedule_steps!r}")
        if mode == "epoch" and (epochs is None or isinstance(epochs, bool) or int(epochs) < 2):
            raise ValueError(f"epochs must be an int >= 2 for mode='epoch', got {epochs!r}")
        self.init, self.target, self.final = weight, target, final
        self.schedule_steps = None if schedule_steps is None else int(schedule_steps)
        self.epochs = None if epochs is None else int(epochs)
        self.state = PositiveWeightState(weight=self._at(1) if mode in ("stage", "epoch") else weight)

    def _at(self, step: int) -> float:
        return positive_weight_schedule(self.mode, step, self.schedule_steps, self.epochs, self.init, self.final)

    @property
    def value(self) -> float:
        return self.state.weight

    def next_state(self, state: PositiveWeightState, entropy: float) -> PositiveWeightState:
        h = _finite("entropy", entropy)
        steps, weight = state.steps + 1, state.weight
        if self.mode == "scheduled":
            frac = min(1.0, steps / self.schedule_steps)
            weight = float(self.init + (self.final - self.init) * frac)
        elif self.mode in ("stage", "epoch"):
            weight = self._at(steps + 1)
        elif self.mode == "entropy":
            step = -self.delta if h < self.target else (self.delta if h > self.target else 0.0)
            weight = float(min(1.0, max(0.0, weight + step)))
        return PositiveWeightState(weight=weight, steps=steps)
