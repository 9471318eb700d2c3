"""The exploration study's levels: a target q0 per level, and the bare stage's length searched per warm start.

A level used to be a recipe (a bare stage of fixed length and lr), and the reduced study of 2026-12-06 showed why
that is not enough: the same recipe gave q0 1.7e-3 on the selection warm start (GRPO trapped 3 of 3) and 1.9e-3 /
3.3e-3 on the two verdict warm starts (GRPO escaped on both), so a gate on one warm start said nothing about the
others. A level is now a **target**: the bare stage runs at a constant lr and stops at the first checkpoint where
the policy's probability of starting a worked line is at or below the level's target. The rule reads only the
starting policy (its first-token probabilities on the held-out prompts), never a training outcome, so it can be
applied to a verdict warm start without looking at any verdict run.

The quantity the rule reads is the **worked-first mass**: the exact probability, averaged over the held-out
prompts, that the first sampled token begins with a digit (:func:`llm.studies.exploration_setting.worked_start_ids`).
q0 is that mass times the share of such starts whose first line is a worked line; that share was 0.98-1.00 on every
starting policy measured (docs/exploration_example), so the mass is q0 without the sampling noise, and it costs one
forward pass of the prompts.

How the constants were set (before any run with them, from the reduced study's selection warm start only):
- **targets**: on warm start 0, GRPO stayed trapped at q0 1.68e-3 (3 of 3 selection runs) and escaped at 2.31e-3
  (3 of 3); the targets are a geometric grid with ratio 1.6 (a little above that bracket's ratio, 1.37, so that the
  boundary falls between two levels) from 1.0e-3, namely 1.0e-3, 1.6e-3, 2.5e-3, and the anchor 1.0e-2, the old
  level 4, where GRPO escaped within 26 steps;
- **lr** 3e-4, the probe's (issue 23): the warm start's own lr destroys the skill, 1e-4 needs hundreds of steps;
- **checkpoint every 5 steps, at most 300**: the old levels took 25-50 cosine-decayed steps, so 300 constant-lr
  steps leaves a wide margin, and 5 steps move the mass by about 10% there.
A warm start that does not reach a target within the budget gets no policy for that level ("not reached", which the
report shows as premise absent for it). The gate's skill check still applies: a long stage can erase the skill.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

__all__ = ["LEVELS", "SEARCH", "Level", "Search", "level_steps", "search_bare_stage"]


@dataclass(frozen=True)
class Level:
    """One level of the trap (the role of Figure 1's m)."""

    index: int
    """1 = smallest target (deepest trap)."""
    target_mass: float
    """The bare stage stops at the first checkpoint where the worked-first mass is at most this."""


LEVELS: tuple[Level, ...] = (Level(1, 1.0e-3), Level(2, 1.6e-3), Level(3, 2.5e-3), Level(4, 1.0e-2))
"""The study's levels (module docstring: how the targets were set)."""


@dataclass(frozen=True)
class Search:
    """How the bare stage's length is searched (module docstring)."""

    lr: float = 3e-4
    every: int = 5
    max_steps: int = 300


SEARCH = Search()


@torch.no_grad()
def _mass(model, ids, mask, worked, temperature: float) -> float:
    from llm.studies.exploration_setting import _first_token_mass

    was_training = model.training
    model.eval()
    mass, _ = _first_token_mass(model, ids, mask, worked, temperature)
    model.train(was_training)
    return float(mass.mean())


def search_bare_stage(cfg, targets, search: Search = SEARCH, *, progress: bool = False) -> dict:
    """Run the constant-lr bare stage on ``cfg``'s warm start once, until every target is reached or the budget ends.

    Args:
        cfg: a trainer config (its model, data and rollout temperature); its bare-stage fields are ignored.
        targets: worked-first masses to reach.
        search: lr, checkpoint spacing and budget.
        progress: tqdm bar.

    Returns:
        ``{"trajectory": [[steps, mass], ...] (steps 0 = the first stage alone), "steps": {target: steps or None}}``.
    """
    import dataclasses

    from llm.data import format_prompts
    from llm.generate import encode_prompts
    from llm.policy import build_policy
    from llm.problems import load_problems
    from llm.studies.exploration_setting import worked_start_ids
    from llm.warmstart import bare_answer_stage

    base = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, bare_stage_steps=0))
    train, test = load_problems(base)
    model, tok = build_policy(base.model, base.data, train)
    worked = torch.tensor(worked_start_ids(tok))
    ids, mask = encode_prompts(tok, format_prompts(test, cfg.data.template, tok))
    temp = cfg.rollout.temperature
    trajectory = [[0, _mass(model, ids, mask, worked, temp)]]
    lowest = min(targets)

    def on_step(done: int, m) -> bool:
        if done % search.every:
            return False
        trajectory.append([done, _mass(m, ids, mask, worked, temp)])
        return trajectory[-1][1] <= lowest

    if trajectory[0][1] > lowest:
        bare_answer_stage(model, tok, train, steps=search.max_steps, lr=search.lr, wrong=cfg.model.bare_stage_wrong,
                          seed=cfg.data.seed, template=cfg.data.template, schedule="constant", on_step=on_step,
                          progress=progress)
    steps = {t: next((s for s, m in trajectory if m <= t), None) for t in targets}
    return {"trajectory": trajectory, "steps": steps}


def level_steps(out: Path, cfg, ws: int, search: Search = SEARCH) -> dict[int, int | None]:
    """Bare-stage length of every level on warm start ``ws`` (searched once, cached in OUT/levels/ws{ws}.json)."""
    path = Path(out) / "levels" / f"ws{ws}.json"
    if not path.is_file():
        found = search_bare_stage(cfg, [lv.target_mass for lv in LEVELS], search)
        record = {"warm_start": ws, "search": asdict(search),
                  "targets": {str(lv.index): lv.target_mass for lv in LEVELS},
                  "steps": {str(lv.index): found["steps"][lv.target_mass] for lv in LEVELS},
                  "trajectory": found["trajectory"]}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))
    saved = json.loads(path.read_text())
    return {int(k): v for k, v in saved["steps"].items()}

