"""Config values: a YAML / command-line value converted to its field's declared type, and the range of every int
field (seeds fit in 32 bits, as numpy needs; other ints are at most 2^31 - 1). Errors name the field."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from llm.config_sections import _check

__all__ = ["check_int_ranges", "coerce"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


_INT_MAX = 2**31 - 1  # counts and sizes: a larger value is a typo, and overflows int32 index tensors
_SEED_MAX = 2**32 - 1  # numpy seeds (and CUDA's) must fit in 32 bits


def check_int_ranges(obj: Any, prefix: str = "") -> None:
    """Every int field of a config (sections included) in range: seeds in [0, 2^32 - 1], other ints at most
    2^31 - 1; the message names the field (``data.seed``)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_int_ranges(value, f"{name}.")
        elif isinstance(value, int) and not isinstance(value, bool):
            if f.name == "seed" or f.name.endswith("_seed"):
                _check(0 <= value <= _SEED_MAX, name, f"an int in [0, {_SEED_MAX}] (32 bits)", value)
            else:
                _check(abs(value) <= _INT_MAX, name, f"an int of at most {_INT_MAX}", value)


def coerce(name: str, tp: Any, value: Any) -> Any:
    """Convert a YAML / command-line value to the field's declared type (int, float, bool, str, Optional)."""
    args = typing.get_args(tp)
    if type(None) in args:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "~", "")):
            return None
        rest = [a for a in args if a is not type(None)]
        tp = rest[0] if len(rest) == 1 else tp
    allowed = ""  # set where the value has the type but not an allowed value
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in _TRUE | _FALSE:
                return s in _TRUE
            raise ValueError
        if tp is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):  # exact (a float round trip would change 99999999999999999999999)
                return value
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            f = float(value)
            if not math.isfinite(f):
                allowed = "a finite number"
                raise ValueError
            return f
        if tp is str:
            return "" if value is None else str(value)
        if tp == tuple[str, ...]:  # a YAML list, or "a,b" from the command line; "" / none = empty
            items = value if isinstance(value, (list, tuple)) else str(value or "").split(",")
            return tuple(str(v).strip() for v in items if str(v).strip() and str(v).strip().lower() != "none")
    except (TypeError, ValueError, OverflowError):
        pass
    else:
        return value
    # outside the except: no chained traceback
    _check(False, name, allowed or f"of type {tp.__name__}", value)
    return value
