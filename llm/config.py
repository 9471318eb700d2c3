"""Configuration of the GRPO trainer: frozen dataclasses, YAML loading and ``key=value`` overrides.

A config file is YAML with one mapping per section (``model``, ``data``, ``rollout``, ``optim``, ``entropy``)
plus top-level run fields (``seed``, ``max_steps``, ``output_dir``, ...). Overrides on the command line use dotted
keys for sections (``entropy.method=aent``, ``rollout.group_size=16``) and bare keys for run fields
(``max_steps=5``, ``output_dir=runs/x``). Values are converted to the declared type of the field, so ``lr=2e-6``
is a float even though YAML 1.1 would read it as a string. Every field is documented by the string literal that
follows it; :func:`field_docs` reads those strings so the documentation table is generated from this file.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import math
import textwrap
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aent import EntropyConfig
from aent.validation import check
from llm.model import DTYPES, ModelConfig

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _unknown(keys: list[str], allowed: set[str], where: str) -> ValueError:
    """One error naming the unknown key(s), a did-you-mean suggestion and the allowed keys."""
    hints = []
    for k in keys:
        close = difflib.get_close_matches(k.split(".")[-1], sorted(allowed), n=1, cutoff=0.6)
        if not close and "." not in k:  # a section field given at the top level, e.g. lr= for optim.lr=
            close = [f"{n}.{k}" for n, sec in SECTIONS.items() if k in {f.name for f in dataclasses.fields(sec)}]
        hints.append(f"{k!r} (did you mean {close[0]!r}?)" if close else repr(k))
    return ValueError(f"unknown config field(s) {', '.join(hints)} in {where}; allowed: {', '.join(sorted(allowed))}")


def _check(ok: bool, name: str, allowed: str, value: Any) -> None:
    """Raise one ValueError naming the config field (as written in YAML), the allowed range and the value."""
    check(ok, name, allowed, value, PREFIX)


PREFIX = "config field `"
"""How error messages name a field of this config: config field `section.field`."""


@dataclass(frozen=True)
class ModelSection(ModelConfig):
    """Which policy to train: a local checkpoint folder, or a small model built from the shape fields.

    The shape fields (arch, hidden, layers, heads, kv_heads, intermediate, max_position, tie_embeddings, dtype,
    init_std, rope_theta) are inherited from ``llm.model.ModelConfig``, their one declaration; the fields below
    are run-time settings (what to load, the tokenizer, the warm start, memory), which the built model's shape
    does not depend on.
    """

    path: str = ""
    """Model folder written by save_pretrained (or a cached hub id); "" builds a small model from the shape fields."""
    tokenizer_path: str = ""
    """Tokenizer folder; "" uses `path`, or trains the project's BPE tokenizer on the task text for a built model."""
    vocab_size: int = 512
    """Built model only: upper bound on the vocabulary of the trained byte-level BPE tokenizer (>= 260)."""
    warm_start_steps: int = 0
    """Supervised steps on the task's worked solutions before RL (llm.warmstart.warm_start, batch 32, cached in
    cache_dir and reused by every seed and method); 0 = none. A randomly initialised model gets no reward."""
    warm_start_lr: float = 1e-3
    """Peak learning rate of the supervised warm start (> 0; warm-up, then cosine decay to 10%)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (saves memory on large models)."""
    lora_r: int = 0
    """LoRA rank (>= 0; needs peft): train low-rank adapters on lora_targets instead of all weights; 0 = full."""
    lora_alpha: float = 16.0
    """LoRA scaling numerator (> 0): the adapter update is (lora_alpha / lora_r) * B A."""
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    """Module names (suffixes) that get adapters; comma-separated on the command line."""
    lora_merge: bool = False
    """With lora_r > 0: also write output_dir/final_merged, the base weights with the adapters merged in."""

    def __post_init__(self) -> None:
        p = PREFIX + "model."
        check(self.dtype in DTYPES, "dtype", f"one of {', '.join(DTYPES)}", self.dtype, p)
        check(self.vocab_size >= 260, "vocab_size", ">= 260 (256 bytes + special tokens)", self.vocab_size, p)
        check(self.warm_start_steps >= 0, "warm_start_steps", ">= 0", self.warm_start_steps, p)
        check(self.warm_start_lr > 0, "warm_start_lr", "> 0", self.warm_start_lr, p)
        check(self.lora_r >= 0, "lora_r", ">= 0 (0 = no LoRA)", self.lora_r, p)
        check(self.lora_alpha > 0, "lora_alpha", "> 0", self.lora_alpha, p)
        check(not self.lora_r or len(self.lora_targets) > 0, "lora_targets", "at least one module name when "
              "lora_r > 0", self.lora_targets, p)
        if not self.path:  # the shape fields matter only for a model built from scratch
            self.validate(p)

    def shape(self) -> ModelConfig:
        """The llm.model.ModelConfig of a model built from scratch (every inherited field, by name)."""
        return ModelConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ModelConfig)})


@dataclass(frozen=True)
class DataSection:
    """Where the prompts and reference answers come from."""

    task: str = "arithmetic"
    """A synthetic task of llm.data.make_task (arithmetic, small_arithmetic, countdown), or a dataset spec for
    llm.data.load_problems (e.g. gsm8k:train, math500, or a .jsonl path)."""
    eval_task: str = ""
    """Held-out set for periodic evaluation (same forms as `task`); "" uses the test split of a synthetic task."""
    prompt_field: str = ""
    """Dataset specs: the row field holding the question, or a list of chat messages rendered with the tokenizer's
    chat template (dotted for nested fields, e.g. extra_info.question); "" recognises question, problem, prompt."""
    answer_field: str = ""
    """Dataset specs: the row field holding the reference answer (dotted, e.g. reward_model.ground_truth); ""
    recognises answer, final_answer, reward_model.ground_truth (verl), ground_truth, a solution's last boxed."""
    n_train: int = 512
    """Synthetic tasks: number of training problems (>= 1). Dataset specs: 0 keeps all rows, N keeps the first N."""
    n_test: int = 64
    """Number of held-out problems used by periodic evaluation (>= 0)."""
    difficulty: int = 0
    """Synthetic tasks: difficulty level 1..8; 0 = the task's default."""
    template: str = "plain"
    """Prompt template of llm.data.TEMPLATES: plain, boxed, qwen_boxed (Qwen2.5-Math, the AEnt paper) or
    r1_think (R1-Distill)."""
    seed: int = 0
    """Seed (>= 0) of the synthetic problem draw, the built model's initialisation and the warm start. Independent
    of the run `seed`, so every seed and method of a comparison starts from the same model."""
    max_prompt_len: int = 128
    """Prompts longer than this many tokens are cut from the left (>= 1)."""
    answer_only_frac: float = 0.0
    """Synthetic tasks: fraction in [0, 1] of the warm-start solutions reduced to the bare ``#### n`` answer
    (llm.data.answer_only): a corpus in two styles, so the warm-started policy is uncertain which to write."""
    answer_only_wrong: float = 0.0
    """Fraction in [0, 1] of those bare warm-start answers that are wrong (off by 1-3), as bare answers in real
    text are less reliable than worked ones. The reward's reference answers are never changed."""

    def __post_init__(self) -> None:
        _check(bool(self.task.strip()), "data.task", "a task name or dataset spec", self.task)
        _check(self.n_train >= 0, "data.n_train", ">= 0", self.n_train)
        from llm.data import TASK_ALIASES, TASKS

        _check(self.n_train >= 1 or TASK_ALIASES.get(self.task, self.task) not in TASKS, "data.n_train",
               f">= 1 for the synthetic task {self.task!r} (0 keeps all rows only of dataset specs)", self.n_train)
        _check(self.n_test >= 0, "data.n_test", ">= 0", self.n_test)
        _check(0 <= self.difficulty <= 8, "data.difficulty", "in [0, 8] (0 = task default)", self.difficulty)
        _check(self.max_prompt_len >= 1, "data.max_prompt_len", ">= 1", self.max_prompt_len)
        from llm.data import TEMPLATES

        _check(self.template in TEMPLATES, "data.template", f"one of {sorted(TEMPLATES)}", self.template)
        _check(self.seed >= 0, "data.seed", ">= 0", self.seed)
        _check(0.0 <= self.answer_only_frac <= 1.0, "data.answer_only_frac", "in [0, 1]", self.answer_only_frac)
        _check(0.0 <= self.answer_only_wrong <= 1.0, "data.answer_only_wrong", "in [0, 1]", self.answer_only_wrong)


@dataclass(frozen=True)
class RolloutSection:
    """How each global step samples its group of responses per prompt."""

    prompts_per_step: int = 8
    """Prompts per global step, summed over all processes (>= 1, divisible by the number of processes)."""
    group_size: int = 8
    """Responses sampled per prompt, G in GRPO (>= 2: a group of one has no baseline)."""
    temperature: float = 1.0
    """Sampling temperature (> 0); the same temperature divides the logits in the loss and the entropy."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]."""
    max_new_tokens: int = 32
    """Maximum response length in tokens (>= 1); sampling also stops at EOS."""
    generate_batch_size: int = 0
    """Rows (prompt x sample) per sampling forward pass on one process; 0 = all at once. Sampling uses per-row
    uniforms seeded by (seed, step, prompt), so neither this nor the number of processes changes the samples."""

    def __post_init__(self) -> None:
        _check(self.prompts_per_step >= 1, "rollout.prompts_per_step", ">= 1", self.prompts_per_step)
        _check(self.group_size >= 2, "rollout.group_size", ">= 2", self.group_size)
        _check(self.temperature > 0, "rollout.temperature", "> 0", self.temperature)
        _check(0 < self.top_p <= 1, "rollout.top_p", "in (0, 1]", self.top_p)
        _check(self.max_new_tokens >= 1, "rollout.max_new_tokens", ">= 1", self.max_new_tokens)
        _check(self.generate_batch_size >= 0, "rollout.generate_batch_size", ">= 0", self.generate_batch_size)


@dataclass(frozen=True)
class OptimSection:
    """PPO-style updates on each batch of rollouts: epochs, mini-batches, accumulation, AdamW and the LR schedule."""

    lr: float = 1e-4
    """Peak AdamW learning rate (> 0)."""
    weight_decay: float = 0.0
    """AdamW weight decay (>= 0)."""
    beta1: float = 0.9
    """AdamW beta1 in [0, 1)."""
    beta2: float = 0.999
    """AdamW beta2 in [0, 1)."""
    adam_eps: float = 1e-8
    """AdamW epsilon (> 0)."""
    warmup_steps: int = 0
    """Linear LR warm-up length in optimizer steps (>= 0)."""
    schedule: str = "constant"
    """LR schedule after warm-up: constant, linear or cosine (decays to min_lr_ratio * lr at the last step)."""
    min_lr_ratio: float = 0.0
    """Final LR as a fraction of `lr` for linear/cosine schedules, in [0, 1]."""
    grad_clip: float = 1.0
    """Global gradient-norm clip (> 0; a huge value disables it)."""
    ppo_epochs: int = 1
    """Passes over each global batch of rollouts (>= 1)."""
    mini_batch_size: int = 0
    """Sequences per optimizer step, summed over processes; 0 = the whole global batch (one update per epoch)."""
    micro_batch_size: int = 8
    """Sequences per forward/backward pass on one process (>= 1); gradients accumulate up to mini_batch_size."""

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optim.lr", "> 0", self.lr)
        _check(self.weight_decay >= 0, "optim.weight_decay", ">= 0", self.weight_decay)
        _check(0 <= self.beta1 < 1, "optim.beta1", "in [0, 1)", self.beta1)
        _check(0 <= self.beta2 < 1, "optim.beta2", "in [0, 1)", self.beta2)
        _check(self.adam_eps > 0, "optim.adam_eps", "> 0", self.adam_eps)
        _check(self.warmup_steps >= 0, "optim.warmup_steps", ">= 0", self.warmup_steps)
        _check(self.schedule in ("constant", "linear", "cosine"), "optim.schedule",
               "one of constant, linear, cosine", self.schedule)
        _check(0 <= self.min_lr_ratio <= 1, "optim.min_lr_ratio", "in [0, 1]", self.min_lr_ratio)
        _check(self.grad_clip > 0, "optim.grad_clip", "> 0", self.grad_clip)
        _check(self.ppo_epochs >= 1, "optim.ppo_epochs", ">= 1", self.ppo_epochs)
        _check(self.mini_batch_size >= 0, "optim.mini_batch_size", ">= 0", self.mini_batch_size)
        _check(self.micro_batch_size >= 1, "optim.micro_batch_size", ">= 1", self.micro_batch_size)


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
                kw[name] = _coerce(name, _hints(cls)[name], value)
        return cls(**kw)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build_section(name: str, sec: type, values: dict[str, Any]) -> Any:
    allowed = {f.name for f in dataclasses.fields(sec)} | ({"preset"} if sec is EntropyConfig else set())
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise _unknown([f"{name}.{k}" for k in unknown], allowed, f"section `{name}`")
    hints = _hints(sec)
    coerced = {k: _coerce(f"{name}.{k}", hints[k], v) for k, v in values.items() if k != "preset"}
    if sec is EntropyConfig:
        preset = values.get("preset")
        base = EntropyConfig.preset(str(preset)).to_dict() if preset else {}
        return EntropyConfig.from_dict({**base, **coerced}, prefix=f"{PREFIX}{name}.")
    return sec(**coerced)


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Convert a YAML / command-line value to the field's declared type (int, float, bool, str, Optional)."""
    args = typing.get_args(tp)
    if type(None) in args:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "~", "")):
            return None
        rest = [a for a in args if a is not type(None)]
        tp = rest[0] if len(rest) == 1 else tp
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in _TRUE | _FALSE:
                return s in _TRUE
            raise ValueError
        if tp is int:
            if isinstance(value, bool):
                raise ValueError
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            if not math.isfinite(float(value)):
                raise ValueError("finite")
            return float(value)
        if tp is str:
            return "" if value is None else str(value)
        if tp == tuple[str, ...]:  # a YAML list, or "a,b" from the command line; "" / none = empty
            items = value if isinstance(value, (list, tuple)) else str(value or "").split(",")
            return tuple(str(v).strip() for v in items if str(v).strip() and str(v).strip().lower() != "none")
    except (TypeError, ValueError, OverflowError) as err:
        finite = str(err) == "finite"
    else:
        return value
    # outside the except: no chained traceback
    _check(False, name, "a finite number" if finite else f"of type {tp.__name__}", value)
    return value


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` / ``section.key=value`` strings to a nested dict (a copy is returned)."""
    import yaml

    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value or section.key=value")
        key, raw = item.split("=", 1)
        key = key.strip().lstrip("-")
        parts = key.split(".")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ValueError(f"override {item!r}: the value is not valid YAML ({_yaml_problem(err)})") from None
        if len(parts) == 1:
            out[key] = value
        elif len(parts) == 2 and parts[0] in SECTIONS:
            sec = out.get(parts[0]) or {}
            if not isinstance(sec, dict):
                sec = dataclasses.asdict(sec)
            out[parts[0]] = {**sec, parts[1]: value}
        else:
            raise ValueError(f"override key {key!r} must be a run field or section.field with section in "
                             f"{sorted(SECTIONS)}")
    return out


def _yaml_problem(err) -> str:
    """One line from a YAML error: the problem and where (line, column; 1-based)."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(err, 'problem', None) or str(err).splitlines()[0]}{where}"


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
            d = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"config file {str(p)!r} is not valid YAML: {_yaml_problem(err)}") from None
        if not isinstance(d, dict):
            raise ValueError(f"config file {str(p)!r} must hold a YAML mapping of fields")
    return TrainConfig.from_dict(apply_overrides(d, overrides or []))


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the full resolved config as YAML (what the run actually used)."""
    import yaml

    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def field_docs(cls: type) -> dict[str, str]:
    """Map each dataclass field to the docstring written under it (read from the class source with ast)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, body[1:]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def field_table(cfg: TrainConfig | None = None) -> str:
    """Markdown table of every config field (dotted key, default, doc), generated from the dataclass docstrings."""
    cfg = cfg or TrainConfig()
    rows = ["| key | default | description |", "| --- | --- | --- |"]
    top = field_docs(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name in SECTIONS:
            continue
        rows.append(f"| `{f.name}` | `{getattr(cfg, f.name)!r}` | {top.get(f.name, '')} |")
    for name, sec in SECTIONS.items():
        docs = field_docs(sec)
        for f in dataclasses.fields(sec):
            rows.append(f"| `{name}.{f.name}` | `{getattr(getattr(cfg, name), f.name)!r}` | {docs.get(f.name, '')} |")
    return "\n".join(rows)
