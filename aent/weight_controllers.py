"""Controllers of sample weights rather than of an entropy coefficient: EntroPIC's alpha and the positive-token
weight w+ (with its upward schedules). Same contract as :mod:`aent.controllers`: the whole mutable state is one
NamedTuple (``ctrl.state``), ``next_state`` is the pure transition, ``update`` applies it.
"""

from __future__ import annotations

from typing import NamedTuple

from aent._controller import _Controller, _finite

__all__ = ["PIController", "PIState", "PositiveWeight", "PositiveWeightState", "positive_weight_schedule"]


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

    def __init__(self, *, kp: float, ki: float, target: float, integral_limit: float | None = None):
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

    @property
    def alpha(self) -> float:
        """alpha of the last update (the state's ``alpha``; the same as :attr:`value`)."""
        return self.state.alpha

    @property
    def integral(self) -> float:
        """Sum of the errors so far (the state's ``integral``)."""
        return self.state.integral

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

    def __init__(self, *, mode: str, init: float, target: float | None = None, delta: float = 0.05,
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

    @property
    def weight(self) -> float:
        """w+ of the next global step (the state's ``weight``; the same as :attr:`value`)."""
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
