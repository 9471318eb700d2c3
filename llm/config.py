"""Configuration of the GRPO trainer: the frozen, validated :class:`TrainConfig` and :func:`load_config`.

A config file is YAML with one mapping per section (``model``, ``data``, ``rollout``, ``optim``, ``entropy``)
plus top-level run fields (``seed``, ``max_steps``, ``output_dir``, ...). Overrides on the command line use dotted
keys for sections (``entropy.method=aent``, ``rollout.group_size=16``) and bare keys for run fields
(``max_steps=5``, ``output_dir=runs/x``). Values are converted to the declared type of the field, so ``lr=2e-6``
is a float even though YAML 1.1 would read it as a string (:mod:`llm.config_values`; YAML reading and overrides:
:mod:`llm.config_yaml`). Every field is documented by the string literal that follows it;
:func:`llm.config_docs.field_docs` reads those strings so the documentation table is generated from the sources
(the sections are in :mod:`llm.config_sections`, the model's shape fields in :class:`llm.model.ModelConfig`).

A key given twice in one mapping and an empty file (or one of comments only) are errors naming the file and the
line, not the last value or the defaults. Every int field is range-checked when the config is built (seeds fit in
32 bits, as numpy needs; other ints are at most 2^31 - 1), with a message naming the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aent import EntropyConfig
from llm.config_sections import (
    PREFIX,
    DataSection,
    ModelSection,
    OptimSection,
    RolloutSection,
    _check,
)
from llm.config_values import check_int_ranges, coerce
from llm.config_yaml import apply_overrides, yaml_load, yaml_problem


def _unknown(keys: list[str], allowed: set[str], where: str) -> ValueError:
    """One error naming the unknown key(s), a did-you-mean suggestion and the allowed keys."""
    hints = []
    for k in keys:
        close = difflib.get_close_matches(k.split(".")[-1], sorted(allowed), n=1, cutoff=0.6)
        if not close and "." not in k:  # a section field given at the top level, e.g. lr= for optim.lr=
            close = [f"{n}.{k}" for n, sec in SECTIONS.items() if k in {f.name for f in dataclasses.fields(sec)}]
        hints.append(f"{k!r} (did you mean {close[0]!r}?)" if close else repr(k))
    return ValueError(f"unknown config field(s) {', '.join(hints)} in {where}; allowed: {', '.join(sorted(allowed))}")


SECTIONS = {"model": ModelSection, "data": DataSection, "rollout": RolloutSection, "optim": OptimSection,
            "entropy": EntropyConfig}


@dataclass(frozen=True)
class TrainConfig:
    """Everything one GRPO run needs. Sections are nested dataclasses; run-level fields sit at the top."""

    model: ModelSection = field(default_factory=ModelSection)
    """The policy (see the model.* fields)."""
    data: DataSection = field(default_factory=DataSection)
    """Prompts and answers (see the data.* fields)."""
    rollout: RolloutSection = field(default_factory=RolloutSection)
    """Sampling of the response groups (see the rollout.* fields)."""
    optim: OptimSection = field(default_factory=OptimSection)
    """Policy updates (see the optim.* fields)."""
    entropy: EntropyConfig = field(default_factory=EntropyConfig)
    """Entropy control: aent.EntropyConfig, the PPO clip range and loss aggregation (see the entropy.* fields)."""
    seed: int = 0
    """Seed of the run (>= 0): prompt order, sampling uniforms, PPO mini-batch shuffles. Same seed gives the
    same metrics. The model and problems depend on data.seed instead, so seeds share one starting model."""
    max_steps: int = 20
    """Number of global (rollout) steps (>= 1)."""
    output_dir: str = "runs/tiny"
    """Run folder: metrics.jsonl, config.yaml, TensorBoard events and checkpoints/."""
    reward: str = "task"
    """Reward function: task (each problem's own reward, llm.rewards.score_problems: correctness, or the
    countdown check), correctness (llm.rewards.correctness_reward), or an import path module:function taking
    (completions, answers) and returning one float per completion."""
    adv_scale: str = "std"
    """Group advantage normalisation: std (GRPO, (r - mean) / std) or none (r - mean, Dr. GRPO's advantage; Dr. GRPO
    in full also sets entropy.loss_agg=seq-mean-token-sum-norm, whose constant is rollout.max_new_tokens unless
    entropy.norm_const is given)."""
    mixed_precision: str = "no"
    """accelerate mixed precision: no, bf16 or fp16."""
    recompute_old_logp: bool | None = None
    """PPO old log-probs from a no-grad forward of the update's own code path (as verl) instead of the sampler's
    KV-cache forward; None = on when model.dtype or mixed_precision is bf16 / fp16, where the two can differ.
    Costs one extra forward (no backward) over the rollout batch per global step."""
    save_every: int = 0
    """Checkpoint every this many global steps (>= 0; 0 = only at the end)."""
    keep_checkpoints: int = 2
    """How many most recent checkpoints to keep (>= 1)."""
    eval_every: int = 0
    """Held-out evaluation every this many global steps (>= 0; 0 = never); writes accuracy, pass@1, mean@k."""
    eval_samples: int = 4
    """k samples per held-out problem for mean@k (>= 1)."""
    eval_temperature: float = 1.0
    """Sampling temperature of the held-out evaluation (> 0)."""
    cache_dir: str = ""
    """Cache of the trained tokenizer and the warm-start model; "" = $AENT_CACHE or ~/.cache/aent."""
    save_every_minutes: float = 0.0
    """Also checkpoint once this many minutes of training passed since the last checkpoint (>= 0; 0 = off): bounds
    the work a kill -9 loses. SIGTERM / SIGUSR1 save at the next step boundary regardless (llm.preempt)."""
    resume: bool = False
    """Continue the run in output_dir from its newest intact checkpoint (same as --resume); its config must match
    except the fields of llm.runfolder.SAFE_TO_CHANGE (max_steps, logging, saving, evaluation)."""
    overwrite: bool = False
    """Delete the run already in output_dir (its metrics, config, checkpoints, final/) first (same as --overwrite);
    without it, or resume, a folder holding a run is refused."""
    progress: bool = True
    """Show a tqdm progress bar with reward and entropy (main process only)."""
    tensorboard: bool = True
    """Also write TensorBoard events to output_dir/tb; false drops tensorboard from report_to."""
    report_to: tuple[str, ...] = ("tensorboard",)
    """Experiment trackers fed each metrics row through accelerate's trackers (llm.tracking): any of tensorboard,
    wandb, trackio, mlflow, as a YAML list or comma-separated (report_to=tensorboard,wandb); metrics.jsonl is
    always written."""

    def __post_init__(self) -> None:
        check_int_ranges(self)
        _check(self.seed >= 0, "seed", ">= 0", self.seed)
        _check(self.max_steps >= 1, "max_steps", ">= 1", self.max_steps)
        _check(bool(str(self.output_dir).strip()), "output_dir", "a non-empty path", self.output_dir)
        _check(bool(self.reward.strip()), "reward", "correctness or module:function", self.reward)
        _check(self.adv_scale in ("std", "none"), "adv_scale", "one of std, none", self.adv_scale)
        _check(self.mixed_precision in ("no", "bf16", "fp16"), "mixed_precision", "one of no, bf16, fp16",
               self.mixed_precision)
        _check(self.save_every >= 0, "save_every", ">= 0", self.save_every)
        _check(self.save_every_minutes >= 0, "save_every_minutes", ">= 0", self.save_every_minutes)
        _check(self.keep_checkpoints >= 1, "keep_checkpoints", ">= 1", self.keep_checkpoints)
        _check(self.eval_every >= 0, "eval_every", ">= 0", self.eval_every)
        _check(self.eval_samples >= 1, "eval_samples", ">= 1", self.eval_samples)
        _check(self.eval_temperature > 0, "eval_temperature", "> 0", self.eval_temperature)
        from llm.tracking import TRACKERS

        _check(set(self.report_to) <= set(TRACKERS), "report_to", f"a list of {', '.join(TRACKERS)}", self.report_to)
        batch = self.rollout.prompts_per_step * self.rollout.group_size
        _check(self.optim.mini_batch_size == 0 or batch % self.optim.mini_batch_size == 0,
               "optim.mini_batch_size", f"0 or a divisor of prompts_per_step * group_size = {batch}",
               self.optim.mini_batch_size)
        need = self.data.max_prompt_len + self.rollout.max_new_tokens
        _check(bool(self.model.path) or self.model.max_position >= need, "model.max_position",
               f">= data.max_prompt_len + rollout.max_new_tokens = {need}", self.model.max_position)

    @property
    def recomputes_old_logp(self) -> bool:
        """Whether this run recomputes the old log-probs (``recompute_old_logp``, None resolved by the precision)."""
        if self.recompute_old_logp is not None:
            return self.recompute_old_logp
        return self.mixed_precision in ("bf16", "fp16") or self.model.dtype in ("bfloat16", "float16")

    @property
    def global_batch(self) -> int:
        """Sequences per global step, summed over processes."""
        return self.rollout.prompts_per_step * self.rollout.group_size

    @property
    def mini_batch(self) -> int:
        """Sequences per optimizer step, summed over processes."""
        return self.optim.mini_batch_size or self.global_batch

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML-serialisable) that :meth:`from_dict` turns back into this config."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @property
    def trackers(self) -> tuple[str, ...]:
        """The trackers this run feeds: report_to, less tensorboard when `tensorboard` is false."""
        return tuple(t for t in self.report_to if t != "tensorboard" or self.tensorboard)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build a validated config from a nested dict; unknown keys raise one error naming them."""
        if not isinstance(d, dict):
            raise ValueError(f"config must be a mapping of fields, got {type(d).__name__}")
        top = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(top))
        if unknown:
            raise _unknown(unknown, set(top), "the top level")
        kw: dict[str, Any] = {}
        for name, value in d.items():
            if name in SECTIONS:
                sec = SECTIONS[name]
                if value is None:
                    value = {}
                if isinstance(value, sec):
                    kw[name] = value
                    continue
                if not isinstance(value, dict):
                    raise ValueError(f"config section `{name}` must be a mapping, got {value!r}")
                kw[name] = _build_section(name, sec, value)
            else:
                kw[name] = coerce(name, _hints(cls)[name], value)
        return cls(**kw)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build_section(name: str, sec: type, values: dict[str, Any]) -> Any:
    allowed = {f.name for f in dataclasses.fields(sec)} | ({"preset"} if sec is EntropyConfig else set())
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise _unknown([f"{name}.{k}" for k in unknown], allowed, f"section `{name}`")
    hints = _hints(sec)
    coerced = {k: coerce(f"{name}.{k}", hints[k], v) for k, v in values.items() if k != "preset"}
    if sec is EntropyConfig:
        preset = values.get("preset")
        base = EntropyConfig.preset(str(preset)).to_dict() if preset else {}
        return EntropyConfig.from_dict({**base, **coerced}, prefix=f"{PREFIX}{name}.")
    return sec(**coerced)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (or start from the defaults when path is None) and apply ``key=value`` overrides.

    ``path`` is a YAML file, or the name of a packaged config (``tiny``, ``aent_qwen2.5_math_1.5b``; see
    ``aent config --list``) when no such file exists.
    """
    import yaml

    import aent_configs

    d: dict[str, Any] = {}
    if path is not None:
        try:
            p = aent_configs.resolve(path)
        except FileNotFoundError as err:
            raise ValueError(str(err)) from None
        try:
            d = yaml_load(p.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"config file {str(p)!r} is not valid YAML: {yaml_problem(err)}") from None
        if d is None:
            raise ValueError(f"config file {str(p)!r} is empty (line 1: no fields); write the fields to set, e.g. "
                             f"`max_steps: 20`, or leave out --config to run on the defaults")
        if not isinstance(d, dict):
            raise ValueError(f"config file {str(p)!r} must hold a YAML mapping of fields")
    if any(o.split("=", 1)[0].strip() == "entropy.preset" for o in overrides or []) and isinstance(d.get("entropy"), dict):
        # A preset named on the command line starts the entropy section afresh: the file's `method: none` (or any
        # other entropy field) would otherwise silently win over it. Later entropy.* overrides still apply on top.
        d = {**d, "entropy": {}}
    return TrainConfig.from_dict(apply_overrides(d, overrides or [], sections=SECTIONS))
