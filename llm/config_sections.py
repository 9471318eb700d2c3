"""The sections of the trainer config (``model``, ``data``, ``rollout``, ``optim``): frozen, validated dataclasses
whose fields are documented by the string literal under each. The ``entropy`` section is ``aent.EntropyConfig``
and the run-level fields are on ``llm.config.TrainConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from aent.validation import check
from llm.model import DTYPES, ModelConfig

__all__ = ["PREFIX", "DataSection", "ModelSection", "OptimSection", "RolloutSection"]


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
    bare_stage_steps: int = 0
    """Second supervised stage after the warm start, on bare answers only (llm.warmstart.bare_answer_stage):
    suppresses the worked style to a small rate q0 (the exploration study's trap); 0 = none."""
    bare_stage_lr: float = 3e-4
    """Peak learning rate of the bare-answer stage (> 0; no warm-up, then bare_stage_schedule)."""
    bare_stage_schedule: str = "cosine"
    """Learning-rate schedule of the bare-answer stage: cosine (decay to 10%) or constant (the exploration study's
    levels, whose length is searched per warm start)."""
    bare_stage_wrong: float = 0.5
    """Share in [0, 1] of the bare-answer stage's answers that are wrong (off by 1-3)."""
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
        check(self.bare_stage_steps >= 0, "bare_stage_steps", ">= 0", self.bare_stage_steps, p)
        check(self.bare_stage_lr > 0, "bare_stage_lr", "> 0", self.bare_stage_lr, p)
        check(self.bare_stage_schedule in ("cosine", "constant"), "bare_stage_schedule", "cosine or constant",
              self.bare_stage_schedule, p)
        check(0 <= self.bare_stage_wrong <= 1, "bare_stage_wrong", "in [0, 1]", self.bare_stage_wrong, p)
        check(self.lora_r >= 0, "lora_r", ">= 0 (0 = no LoRA)", self.lora_r, p)
        check(self.lora_alpha > 0, "lora_alpha", "> 0", self.lora_alpha, p)
        check(not self.lora_r or len(self.lora_targets) > 0, "lora_targets", "at least one module name when "
              "lora_r > 0", self.lora_targets, p)
        if not self.path:  # the shape fields matter only for a model built from scratch
            self.validate(p)

    def shape(self) -> ModelConfig:
        """The llm.model.ModelConfig of a model built from scratch (every inherited field, by name)."""
        return ModelConfig(**{f.name: getattr(self, f.name) for f in fields(ModelConfig)})


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
    chunked_loss: bool = True
    """Compute the loss's log-probs and entropies from the last hidden states and the LM-head weight in token
    chunks, so the (micro-batch tokens, V) logits never exist; same metrics within float rounding. Methods whose
    loss is a sum of per-token terms get loss and gradient in one pass (aent.chunked_policy_loss), the others
    (entropic, clip_cov, kl_cov, top_entropy) per-token terms (aent.chunked_policy_terms). false = materialised
    logits (the reference path). Models whose head is not a plain bias-free Linear (LoRA on the head,
    soft-capping) and FSDP / DeepSpeed runs use the logits whatever this says."""

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
        _check(isinstance(self.chunked_loss, bool), "optim.chunked_loss", "true or false", self.chunked_loss)
