"""A stand-in reward for the smoke budget only (``configs/reproduce/smoke.yaml``), never for a result.

The smoke's policy (20 warm-start steps) answers nothing correctly, so every group of its step-1 batch has equal
rewards, and ``aent calibrate`` rightly refuses a batch without a policy gradient. This reward pays 1.0 for a
completion with an even number of characters, which varies within a group of random completions, so that the
calibration stages of the smoke run have something to measure. Like every number of the smoke report, what it
produces means nothing.
"""

from __future__ import annotations

__all__ = ["even_length"]


def even_length(completions: list[str], answers: list[str]) -> list[float]:
    """1.0 for each completion whose length in characters is even, else 0.0 (``answers`` unused).

    >>> even_length(["12", "123", ""], ["3", "3", "3"])
    [1.0, 0.0, 1.0]
    """
    return [float(len(c) % 2 == 0) for c in completions]
