"""The problems a run trains and evaluates on, and its reward function (config fields `data.*` and `reward`)."""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable

from llm.config import TrainConfig

__all__ = ["load_problems", "make_reward_fn", "score"]


def load_problems(cfg: TrainConfig) -> tuple[list, list]:
    """(train, held-out) problems: a synthetic task's two disjoint splits, or dataset specs of
    ``llm.data.load_problems`` (benchmark names, files)."""
    import llm.data as data

    d = cfg.data
    difficulty = d.difficulty or None
    fields = {"prompt_field": d.prompt_field, "answer_field": d.answer_field}  # dataset specs only
    name = data.TASK_ALIASES.get(d.task, d.task)
    if name in data.TASKS:
        train_set, test_set = data.make_task(name, d.n_train, d.n_test, seed=d.seed, difficulty=difficulty)
        if d.answer_only_frac:
            train_set = data.answer_only(train_set, d.answer_only_frac, seed=d.seed, wrong=d.answer_only_wrong)
    else:
        train_set, test_set = data.load_problems(d.task, n=d.n_train, **fields), []
    if d.eval_task:
        ev = data.TASK_ALIASES.get(d.eval_task, d.eval_task)
        if ev in data.TASKS and ev != name:
            test_set = data.load_problems(ev, split="test", n=max(1, d.n_test), seed=d.seed, difficulty=difficulty)
        elif ev not in data.TASKS:
            test_set = data.load_problems(d.eval_task, n=d.n_test, **fields)
    return train_set, test_set[: d.n_test]


def make_reward_fn(spec: str) -> Callable[[list[str], list], list[float]]:
    """The reward function named by config field `reward`, in the one signature the trainer and :func:`score`
    call: f(completions, problems) -> list of floats.

    ``task`` is each problem's own reward (:func:`llm.rewards.score_problems`); ``correctness``
    (:func:`llm.rewards.correctness_reward`) and a ``module:function`` take (completions, answers) and are handed
    each problem's reference answer.
    """
    from llm.rewards import correctness_reward, score_problems

    if spec == "task":
        return score_problems
    if spec == "correctness":
        return functools.partial(_on_answers, correctness_reward)
    if ":" not in spec:
        raise ValueError(f"config field `reward` must be task, correctness or module:function; got {spec!r}")
    module, name = spec.split(":", 1)
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"config field `reward` = {spec!r}: cannot import it ({err})") from None
    return functools.partial(_on_answers, fn)


def _on_answers(fn: Callable[[list[str], list[str]], list[float]], completions: list[str], problems: list):
    """A reward over (completions, answers) called in the trainer's signature (completions, problems)."""
    return fn(completions, [p.answer for p in problems])


def score(reward_fn, spec: str, completions: list[str], problems: list, step: int) -> list[float]:
    """Call the reward function; a failure names the step and the sample (index, problem, completion)."""
    try:
        out = [float(r) for r in reward_fn(completions, problems)]
        if len(out) != len(completions):
            raise ValueError(f"returned {len(out)} rewards for {len(completions)} completions")
    except Exception as err:
        bad = _first_failing(reward_fn, completions, problems)
        where = "" if bad is None else (f" on sample {bad} (question {problems[bad].question[:60]!r}, "
                                        f"completion {completions[bad][:60]!r})")
        raise ValueError(f"reward function {spec!r} failed at step {step}{where}: {type(err).__name__}: "
                         f"{err}") from err
    bad = [i for i, r in enumerate(out) if not math.isfinite(r)]
    if bad:
        raise ValueError(f"reward function {spec!r} returned a non-finite reward at step {step} for sample "
                         f"{bad[0]} (completion {completions[bad[0]][:60]!r}); rewards must be finite numbers")
    return out


def _first_failing(reward_fn, completions, problems) -> int | None:
    for i, (c, p) in enumerate(zip(completions, problems)):
        try:
            reward_fn([c], [p])
        except Exception:
            return i
    return None


