"""benchmarks/llm_setting_curves.py: the chosen candidate is exactly the shipped CPU default, every candidate
resolves to a valid config, and the acceptance criteria (fixed before running) decide hand-made summaries."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from llm.config import load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("llm_setting_curves", ROOT / "benchmarks" / "llm_setting_curves.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["llm_setting_curves"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_chosen_candidate_is_the_shipped_default(bench):
    tiny = str(ROOT / "configs" / "tiny.yaml")
    assert load_config(tiny, bench.CANDIDATES["small_style65_wrong75_w600"]) == load_config(tiny, [])
    for name, overrides in bench.CANDIDATES.items():  # each candidate is a valid, distinct run
        cfg = load_config(tiny, overrides)
        assert cfg.data.task in ("arithmetic", "small_arithmetic"), name
    resolved = {repr(load_config(tiny, ov)) for ov in bench.CANDIDATES.values()}
    assert len(resolved) == len(bench.CANDIDATES)


def test_criteria_on_hand_made_summaries(bench):
    good = {"greedy_start": 0.1, "greedy_end": 0.9, "mean@8_start": 0.3, "mean@8_end": 0.8, "reward_first_q": 0.5,
            "reward_last_q": 0.8, "entropy_start": 0.35, "entropy_last_q": 0.06}
    assert all(bench.criteria(good).values())
    flat = {**good, "greedy_end": 0.19, "mean@8_end": 0.39, "entropy_start": 0.29, "entropy_last_q": 0.2,
            "reward_last_q": 0.5}
    assert not any(bench.criteria(flat).values())  # gains 0.09 < 0.10, reward flat, start < 0.3, ratio > 1/2
