"""The plumbing every controller shares: one NamedTuple state, a pure transition, and its checkpoint dict.

Private: the controllers themselves are in :mod:`aent.controllers` (coefficients) and
:mod:`aent.weight_controllers` (EntroPIC's alpha, the positive-token weight).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple


class ConstantState(NamedTuple):
    steps: int = 0
    """Global steps counted so far."""


def _finite(name: str, x: float) -> float:
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return x


def _box(lo: float, hi: float, lo_name: str = "coef_min", hi_name: str = "coef_max") -> None:
    if not (lo >= 0 and lo <= hi):
        raise ValueError(f"need 0 <= {lo_name} <= {hi_name}, got {lo_name}={lo!r}, {hi_name}={hi!r}")


class _Controller:
    """Shared plumbing over ``state`` (a NamedTuple of type ``State``) and the pure ``next_state``.

    ``state`` is the single place that holds what changes; :meth:`update` replaces it with ``next_state``'s result.
    Its fields are read through ``ctrl.state`` (e.g. ``ctrl.state.coef``) or the read-only properties each
    controller declares for the ones callers use; nothing assigns them from outside.
    """

    State: type = ConstantState
    state: Any

    @property
    def steps(self) -> int:
        """Updates counted so far (every state has this field)."""
        return self.state.steps

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
