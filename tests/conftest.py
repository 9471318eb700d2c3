"""Shared test fixtures: the real data folder beside the checkout, and quiet, reproducible torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Two cores are shared by pytest-xdist workers: one torch thread each keeps them from fighting.
torch.set_num_threads(1)

# Profiles (choose with HYPOTHESIS_PROFILE=name):
# - ci (default): 50 examples, derandomized: the same inputs every run, so CI is reproducible.
# - dev: 100 random examples.
# - slow: 1,000 random examples, un-derandomized, failing seeds printed: finds what the fixed inputs of `ci` never
#   reach. Run it over the property tests, e.g.
#     HYPOTHESIS_PROFILE=slow OMP_NUM_THREADS=1 python -m pytest -p no:randomly -q tests/aent tests/llm/test_math_equiv.py
#   and add each case it finds as an explicit @example.
settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("slow", max_examples=1000, deadline=None, derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AENT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when the folder is absent (a user's fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not present")
    return SHARED_DATA
