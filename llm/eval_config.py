"""What ``aent eval`` / ``python -m llm.evaluate`` evaluates: one frozen, validated :class:`EvalConfig` (a saved
model, a problem set and the sampling settings) for :func:`llm.evaluate.evaluate_cli`."""

from __future__ import annotations

from dataclasses import dataclass

from aent.validation import check, is_int, is_num
from llm.model import DTYPES

__all__ = ["EvalConfig"]

_PREFIX = "EvalConfig."


@dataclass(frozen=True)
class EvalConfig:
    """A saved model evaluated on a problem set: pass@1 / pass@k / mean@k (:func:`llm.evaluate.evaluate`)."""

    model_path: str
    """Folder written by ``save_pretrained`` (e.g. ``RUN_DIR/final``)."""
    task: str = "arithmetic"
    """A dataset spec of :func:`llm.data.load_problems`: synthetic task, benchmark (gsm8k:test, math500, ...) or
    file."""
    n: int = 64
    """Number of problems (synthetic tasks: >= 1; datasets: the first n rows, 0 = all)."""
    samples: int = 4
    """k samples per problem (1 when ``temperature`` is 0)."""
    temperature: float = 1.0
    """Sampling temperature (0 = greedy, one sample)."""
    max_new_tokens: int = 64
    """Longest response in tokens."""
    template: str = "plain"
    """Prompt template of ``llm.data.TEMPLATES``."""
    seed: int = 0
    """Sampling seed."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    batch_size: int = 64
    """Rows (problem x sample) per generation call."""
    tokenizer_path: str | None = None
    """Tokenizer folder; None = ``model_path``."""
    split: str = "test"
    """Synthetic tasks: ``"test"`` or ``"train"``."""
    data_seed: int = 0
    """Synthetic tasks: the split seed (the trainer's problems use 0 unless configured otherwise)."""
    difficulty: int | None = None
    """Synthetic tasks: 1..8, None = the task's default."""
    dtype: str = "float32"
    """Model dtype."""
    progress: bool = True
    """Show a progress bar."""
    prompt_field: str = ""
    """Dataset row field of the question or chat messages (dotted; see llm.data.rows)."""
    answer_field: str = ""
    """Dataset row field of the reference answer (dotted)."""

    def __post_init__(self) -> None:
        for name in ("n", "samples", "max_new_tokens", "seed", "batch_size", "data_seed"):
            value, low = getattr(self, name), 0 if name in ("n", "seed", "data_seed") else 1
            check(is_int(value) and value >= low, name, f"an int >= {low}", value, _PREFIX)
        check(is_num(self.temperature) and self.temperature >= 0, "temperature", "a number >= 0", self.temperature,
              _PREFIX)
        check(is_num(self.top_p) and 0 < self.top_p <= 1, "top_p", "in (0, 1]", self.top_p, _PREFIX)
        check(self.difficulty is None or (is_int(self.difficulty) and self.difficulty >= 1), "difficulty",
              "None or an int >= 1", self.difficulty, _PREFIX)
        check(self.dtype in DTYPES, "dtype", f"one of {tuple(DTYPES)}", self.dtype, _PREFIX)
        check(bool(self.model_path), "model_path", "a folder", self.model_path, _PREFIX)
