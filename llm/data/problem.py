"""The one record every task, loader and reward shares: a question with a verifiable final answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    """A math problem with a verifiable final answer.

    Attributes:
        question: the problem statement shown to the model (non-empty).
        answer: the reference final answer only (``"18"``, ``"\\frac{14}{3}"``), compared by the reward.
        solution: a worked solution ending in the answer (``#### n`` or ``\\boxed{}``), used for
            supervised warm-up and tokenizer training; None when the source has none.
        source: where it came from, e.g. ``"gsm8k:test"``, ``"synthetic:arithmetic"``, a file path.
        meta: free-form extras. Keys read by the library: ``"reward"`` (name in :data:`llm.rewards.REWARDS`,
            default ``"correctness"``), for countdown ``"numbers"`` and ``"target"``, and ``"messages"`` (the
            chat messages of a verl / TRL conversational row, rendered with the tokenizer's chat template).
    """

    question: str
    answer: str
    solution: str | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError(f"Problem.question must be a non-empty str, got {self.question!r}")
        if not isinstance(self.answer, str) or not self.answer.strip():
            raise ValueError(f"Problem.answer must be a non-empty str, got {self.answer!r}")
        if self.solution is not None and not isinstance(self.solution, str):
            raise ValueError(f"Problem.solution must be a str or None, got {type(self.solution).__name__}")
        if not isinstance(self.meta, dict):
            raise ValueError(f"Problem.meta must be a dict, got {type(self.meta).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (inverse of :meth:`from_dict`)."""
        return {
            "question": self.question,
            "answer": self.answer,
            "solution": self.solution,
            "source": self.source,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        """Build from a dict with the field names of this class (unknown keys raise)."""
        unknown = set(d) - {"question", "answer", "solution", "source", "meta"}
        if unknown:
            raise ValueError(f"Problem.from_dict: unknown keys {sorted(unknown)}")
        return cls(**d)
