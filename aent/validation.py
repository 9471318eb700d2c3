"""One validator for every config of the project (aent, toy, llm, reproduce).

Each config checks its fields in ``__post_init__`` with :func:`check`, naming the field, the allowed values
and the value given; the caller passes the prefix that tells the user where the field lives:

    >>> check(0.5 < 1, "clamp_p", "in [0, 1)", 0.5, prefix="EntropyConfig.")
    >>> check(1.5 < 1, "clamp_p", "in [0, 1)", 1.5, prefix="EntropyConfig.")
    Traceback (most recent call last):
    ...
    ValueError: EntropyConfig.clamp_p must be in [0, 1), got 1.5
    >>> check(False, "optim.lr", "> 0", -1.0, prefix="config field `")
    Traceback (most recent call last):
    ...
    ValueError: config field `optim.lr` must be > 0, got -1.0

A prefix that opens a backtick quotes the field (the closing backtick is added): ``config field `entropy.``
names ``clamp_p`` as ``config field `entropy.clamp_p` ``, the key a YAML config or an override writes.
A config nested in another (``aent.EntropyConfig`` in the llm and toy configs) takes the outer prefix through
its ``validate(prefix)`` method, so its messages never need rewriting afterwards.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["check", "field_name", "is_int", "is_num"]


def field_name(field: str, prefix: str = "") -> str:
    """How a message names ``field``: ``prefix + field``, closed by a backtick when the prefix opens one."""
    return f"{prefix}{field}`" if prefix.count("`") % 2 else f"{prefix}{field}"


def check(ok: bool, field: str, allowed: str, value: Any, prefix: str = "") -> None:
    """Raise ``ValueError("{prefix}{field} must be {allowed}, got {value!r}")`` unless ``ok``.

    Args:
        ok: the condition the field must meet.
        field: the field's name as the user writes it (``clamp_p``, ``optim.lr``).
        allowed: the allowed values in words (``in [0, 1)``, ``one of ('sgd', 'adam')``).
        value: the value given.
        prefix: where the field lives (``EntropyConfig.``, ``TrainConfig.``, ``config field ` ``).
    """
    if not ok:
        raise ValueError(f"{field_name(field, prefix)} must be {allowed}, got {value!r}")


def is_num(x: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_int(x: Any) -> bool:
    """An int (not a bool)."""
    return isinstance(x, int) and not isinstance(x, bool)
