"""What a run was graded with and on which library versions, written at the top of its ``config.yaml``.

The header is YAML comments, so the file still loads as a config (``aent train --config RUN/config.yaml``)::

    # aent run config: load it with `aent train --config THIS_FILE` (the header lines are comments)
    # environment: {"aent": "0.1.0", "python": "3.11.7", "torch": "2.13.0", ..., "grader": "..."}

``grader`` names the reward path the run used. For MATH-style answers it says whether the symbolic stage
(math-verify) was on: without math-verify, ``\\frac{\\sqrt{2}}{2}`` against ``\\frac{1}{\\sqrt{2}}`` scores 0, so
two runs that differ only in that library are not comparable, and the header says so.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["LIBRARIES", "grader", "library_versions", "read_environment", "run_environment", "write_run_config"]

LIBRARIES = ("aent", "torch", "transformers", "accelerate", "tokenizers", "math-verify", "numpy", "pyarrow")
"""Distributions whose versions every run records (None when not installed)."""

_HEADER = "# aent run config: load it with `aent train --config THIS_FILE` (the header lines are comments)\n"
_ENV_PREFIX = "# environment: "


def library_versions() -> dict[str, str | None]:
    """Installed version of each of :data:`LIBRARIES` (None when missing), plus the Python version."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def grader(reward: str) -> str:
    """The reward path of config field ``reward``, with the stages of the answer check that are active."""
    from llm.math_equiv import HAS_MATH_VERIFY

    symbolic = ("math-verify symbolic" if HAS_MATH_VERIFY
                else "NO symbolic stage: math-verify is not installed (pip install math-verify)")
    check = (f"llm.rewards.answers_match (strict extraction of the declared answer -> exact integers and decimals "
             f"-> {symbolic}, 2 s per call, 5 s per batch)")
    if reward == "task":
        return f"llm.rewards.score_problems: correctness via {check}; countdown via llm.rewards.countdown_reward"
    if reward == "correctness":
        return f"llm.rewards.correctness_reward via {check}"
    return reward


def run_environment(reward: str) -> dict[str, Any]:
    """Library versions and the grader path of a run (the ``environment`` header of its config.yaml)."""
    return {**library_versions(), "grader": grader(reward)}


def write_run_config(cfg, path: str | Path) -> dict[str, Any]:
    """Write the resolved config as YAML under the environment header; returns the environment."""
    import yaml

    env = run_environment(cfg.reward)
    body = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    Path(path).write_text(_HEADER + _ENV_PREFIX + json.dumps(env) + "\n" + body)
    return env


def read_environment(path: str | Path) -> dict[str, Any]:
    """The environment header of a run's config.yaml (a run folder works too); {} when it has none."""
    p = Path(path)
    p = p / "config.yaml" if p.is_dir() else p
    for line in p.read_text().splitlines():
        if line.startswith(_ENV_PREFIX):
            return json.loads(line[len(_ENV_PREFIX):])
        if not line.startswith("#"):
            break
    return {}
