"""A run's config.yaml records the library versions and the grader path, and still loads as a config."""

from __future__ import annotations

import accelerate
import torch
import transformers

import llm.math_equiv
from llm.config import load_config
from llm.provenance import grader, read_environment, run_environment, write_run_config
from llm.rewards import correctness_reward


def test_header_records_versions_and_the_file_still_loads(tmp_path):
    cfg = load_config(None, ["max_steps=3", "entropy.method=aent", "reward=correctness"])
    path = tmp_path / "config.yaml"
    env = write_run_config(cfg, path)
    assert load_config(path) == cfg  # the header is YAML comments
    assert read_environment(tmp_path) == env == read_environment(path)
    assert torch.__version__.startswith(env["torch"])  # torch's own version string carries a +cpu suffix
    assert env["transformers"] == transformers.__version__ and env["accelerate"] == accelerate.__version__
    assert env["grader"].startswith("llm.rewards.correctness_reward")
    (tmp_path / "plain.yaml").write_text("max_steps: 2\n")
    assert read_environment(tmp_path / "plain.yaml") == {}


def test_grader_says_whether_the_symbolic_stage_is_on(monkeypatch):
    # The symbolic stage is what makes these equal; the header must say when a run had it.
    on = correctness_reward(["\\boxed{\\frac{\\sqrt{2}}{2}}"], ["\\frac{1}{\\sqrt{2}}"])
    assert on == [1.0 if llm.math_equiv.HAS_MATH_VERIFY else 0.0]
    assert ("math-verify symbolic" in grader("task")) == llm.math_equiv.HAS_MATH_VERIFY
    monkeypatch.setattr(llm.math_equiv, "HAS_MATH_VERIFY", False)
    assert "NO symbolic stage" in grader("task") and "NO symbolic stage" in run_environment("correctness")["grader"]
    assert grader("tests.llm.test_train:digit_reward") == "tests.llm.test_train:digit_reward"
