"""Seeds derived from integers: the trainer's prompts, sampling uniforms and mini-batch orders are functions of
(seed, step, ...) so that a run needs no random-state to resume and does not depend on the number of processes."""

from __future__ import annotations

import numpy as np

__all__ = ["mix_seed"]


def mix_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (numpy SeedSequence), e.g. (seed, step, prompt)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)
