"""``aent calibrate``: measure the starting policy on one rollout batch, then propose AEnt's constants.

The policy is built exactly as ``aent train`` builds it (:func:`llm.policy.build_policy`: loaded from
``model.path`` or built locally and warm-started), and the batch is the trainer's step-1 rollout (same prompts,
per-row uniforms, temperature, top-p, group size and rewards: :func:`llm.train.rollout`). On that batch:

- **never-used share u**: a token id is *effectively never used* when it was not drawn in the batch and the
  starting policy, sampling as in training for the whole planned run, would draw it less than once in
  expectation: S * sum_s pi_s(a) < 1, with pi_s = softmax(z_s / T) at every valid response position s of the batch
  (one step's batch, so the sum is one step's expected draws) and S the planned number of global steps. Such a
  token gets no sample, hence no policy gradient of its own, in the run; a bonus that spends entropy on it
  explores nothing the policy would emit. A token drawn in the batch counts as used whatever its mass (so u < 1).
  (With top_p < 1 the sampler never draws outside the nucleus; the rule uses the untruncated softmax.)
- **H0**: token-mean clamped entropy (:func:`aent.clamped_entropy`) at the candidate p over the response tokens,
  at the rollout temperature;
- **gradient norms**: the global L2 norm over the trainable parameters of the gradient of (a) the GRPO policy loss
  as the trainer's first update computes it (:class:`aent.EntropyControl` with method none and the run's
  ``loss_agg``, group advantages, old log-probs equal to the current ones, so the ratio is 1 and the clip is
  inactive) and (b) the token-mean clamped entropy at p. Groups whose rewards are all equal have advantage 0: they
  add nothing to (a) but their tokens stay in its token-mean denominator, as in training. If every group is
  all-equal the policy gradient is 0 and calibration stops with an error (lambda has nothing to be scaled by).

The rule that turns these into constants is :func:`aent.calibration.propose` (docs/calibrate.md). Runs in one
process (not under ``accelerate launch``): the model, one micro-batch's activations and one gradient must fit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

import aent
from aent.calibration import QWEN_MATH, Measurements, Proposal, Reference, clamp_rule, propose
from aent.validation import check, is_int, is_num
from llm.policy import completion_logits
from llm.update import micro_slices

__all__ = ["Calibration", "GradNorms", "calibrate", "grad_norms", "measure",
           "starting_batch", "token_mass", "unused_share"]


@dataclass(frozen=True)
class GradNorms:
    """Gradient norms of the policy loss and of the token-mean clamped entropy, and that entropy's value."""

    pg_grad_norm: float
    ent_grad_norm: float
    clamped_entropy: float


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` measured and proposes, and where it ran."""

    measurements: Measurements
    proposal: Proposal
    steps: int
    """Planned global steps the proposal is for."""
    config: str
    """The ``--config`` the policy and batch came from."""
    batch: str
    """The batch in words (prompts x samples, reward mean, temperature)."""
    machine: str
    """The machine it ran on (CPU model, cores, torch, device)."""
    seconds: float

    def record(self) -> dict:
        """JSON-ready: ``{"constants": {ent_coef, coef_min, coef_max, band_low, band_high, coef_lr, clamp_p,
        warmup} (unrounded), "measurements", "rules", "warnings", "steps", "batch", "machine", "seconds"}``."""
        from dataclasses import asdict

        pr = self.proposal
        keys = ("ent_coef", "coef_min", "coef_max", "band_low", "band_high", "coef_lr", "clamp_p", "warmup")
        return {"constants": {k: getattr(pr, k) for k in keys}, "measurements": asdict(self.measurements),
                "rules": [list(r) for r in pr.rules], "warnings": list(pr.warnings), "steps": self.steps,
                "batch": self.batch, "machine": self.machine, "seconds": self.seconds}


def _chunks(n: int, size: int | None) -> list[torch.Tensor]:
    return list(torch.arange(n).split(size or n))


def token_mass(model, batch: dict, *, temperature: float = 1.0, batch_size: int | None = None,
               chunk_size: int | None = None) -> tuple[torch.Tensor, float, int]:
    """Expected draws of every token id over the batch's valid response positions, and the full entropy.

    Args:
        model: causal LM.
        batch: ``prompt_ids``, ``prompt_mask`` (N, Tp), ``completion_ids``, ``completion_mask`` (N, Tc).
        temperature: the rollout temperature T.
        batch_size: rows per forward pass (None: all).
        chunk_size: token chunk of :func:`aent.entropy`.

    Returns:
        (mass (V,) float64 = sum_s softmax(z_s / T), token-mean full entropy, number of valid tokens).
    """
    mass, ent_sum, tokens = None, 0.0, 0
    with torch.no_grad():
        for rows in _chunks(batch["completion_ids"].shape[0], batch_size):
            mb = _rows(batch, rows, model)
            logits = completion_logits(model, mb["prompt_ids"], mb["prompt_mask"], mb["completion_ids"],
                                       mb["completion_mask"])  # (b, Tc, V)
            mask = mb["completion_mask"].bool()
            for z in logits[mask].split(chunk_size or 1024):  # (<= chunk, V): one token chunk in fp32 at a time
                part = torch.softmax(z.float() / temperature, -1).sum(0).double().cpu()
                mass = part if mass is None else mass + part
            ent_sum += float(aent.entropy(logits, mb["completion_mask"], temperature, chunk_size=chunk_size).sum())
            tokens += int(mask.sum())
    return mass, ent_sum / max(tokens, 1), tokens


def unused_share(mass: torch.Tensor, steps: int, draws: float = 1.0, drawn: torch.Tensor | None = None) -> float:
    """Share of token ids not drawn in the batch and with fewer than ``draws`` expected draws over ``steps`` batches.

    Args:
        mass: (V,) expected draws of each id in one batch (:func:`token_mass`).
        steps: planned global steps S (>= 1).
        draws: the threshold (1: less than one expected draw in the whole run).
        drawn: ids sampled in the batch (any shape, long), which count as used; None: none.

    Returns:
        |{a not in drawn : S * mass[a] < draws}| / V.
    """
    check(is_int(steps) and steps >= 1, "steps", "an int >= 1", steps, prefix="unused_share: ")
    check(is_num(draws) and draws > 0, "draws", "> 0", draws, prefix="unused_share: ")
    never = mass.double() * steps < draws  # (V,)
    if drawn is not None:
        never[drawn.reshape(-1).long().cpu()] = False
    return float(never.double().mean())


def _rows(batch: dict, rows: torch.Tensor, model) -> dict:
    dev = next(model.parameters()).device
    full = {"old_logp": torch.zeros(batch["completion_ids"].shape), **batch}
    return {k: v.to(dev) for k, v in micro_slices(full, rows).items()}


def grad_norms(model, batch: dict, adv: torch.Tensor, *, entropy_cfg: aent.EntropyConfig, clamp_p: float,
               temperature: float = 1.0, batch_size: int | None = None) -> GradNorms:
    """|grad L_PG| and |grad H~| over the trainable parameters, accumulated over row chunks exactly.

    Args:
        model: causal LM (its ``.grad`` buffers are cleared before and after).
        batch: rollout tensors as in :func:`token_mass`.
        adv: (N,) group advantages.
        entropy_cfg: the run's entropy config (``loss_agg``, ``chunk_size``, ``norm_const``; the method is ignored).
        clamp_p: p of the clamped entropy.
        temperature: rollout temperature.
        batch_size: rows per forward (the trainer's micro-batch size; the result does not depend on it).

    Returns:
        :class:`GradNorms` (the clamped entropy is the token mean over the batch).
    """
    control = aent.EntropyControl(entropy_cfg.replace(method="none"))
    token_mean = entropy_cfg.loss_agg == "token-mean"
    params = [p for p in model.parameters() if p.requires_grad]
    mask_all = batch["completion_mask"]
    n_tokens = float(mask_all.sum())
    chunks = _chunks(mask_all.shape[0], batch_size)
    was_training = model.training
    model.train()  # the trainer's update runs in train mode
    model.zero_grad(set_to_none=True)
    norms, h_sum = [], 0.0
    try:
        for kind in ("pg", "ent"):
            for rows in chunks:
                mb = _rows(batch, rows, model)
                mask = mb["completion_mask"]
                logits = completion_logits(model, mb["prompt_ids"], mb["prompt_mask"], mb["completion_ids"], mask)
                tokens = float(mask.sum())
                if kind == "pg":
                    old = aent.token_logprobs(logits.detach(), mb["completion_ids"], temperature)  # ratio 1
                    loss = control.loss(logits=logits, actions=mb["completion_ids"], old_logp=old,
                                        adv=adv[rows].to(logits.device), mask=mask, temperature=temperature).loss
                    share = tokens / max(n_tokens, 1.0) if token_mean else len(rows) / mask_all.shape[0]
                else:
                    cent = aent.clamped_entropy(logits, clamp_p, mask, temperature,
                                                chunk_size=entropy_cfg.chunk_size)  # (b, Tc)
                    loss = aent.masked_mean(cent, mask)
                    share = tokens / max(n_tokens, 1.0)
                    h_sum += float(loss.detach()) * tokens
                (loss * share).backward()
            grads = [p.grad.double().pow(2).sum() for p in params if p.grad is not None]
            norms.append(float(torch.stack(grads).sum().sqrt()) if grads else 0.0)
            model.zero_grad(set_to_none=True)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return GradNorms(pg_grad_norm=norms[0], ent_grad_norm=norms[1], clamped_entropy=h_sum / max(n_tokens, 1.0))


def measure(model, batch: dict | list[dict], adv: torch.Tensor | list[torch.Tensor], *, steps: int,
            group_size: int, entropy_cfg: aent.EntropyConfig, temperature: float = 1.0,
            clamp_p: float | None = None, reference: Reference = QWEN_MATH, batch_size: int | None = None,
            draws: float = 1.0) -> Measurements:
    """The :class:`aent.calibration.Measurements` of a model on rollout batches (rules: module docstring).

    With several batches (each one step's batch of the starting policy), the expected draws per step are the
    mean over batches, the entropies token means over all of them, and each gradient norm the mean of the
    per-batch norms (each batch is one update's worth, the scale the trainer's first update sees).

    Args:
        model: the starting policy.
        batch, adv: one rollout batch and its group advantages (N,), or lists of them.
        steps: planned global steps (the never-used rule counts draws over the run).
        group_size: G (for the share of all-equal groups).
        entropy_cfg: the run's entropy config.
        temperature: rollout temperature.
        clamp_p: candidate p; None: the rule's p for the measured never-used share.
        reference: published setting of the p rule.
        batch_size: rows per forward pass.
        draws: never-used threshold in expected draws over the run.

    Raises:
        ValueError: every group of every batch has all-equal rewards (no policy gradient).
    """
    batches, advs = (list(batch), list(adv)) if isinstance(batch, list | tuple) else ([batch], [adv])
    if not batches or len(batches) != len(advs):
        raise ValueError(f"measure: {len(batches)} batches and {len(advs)} advantage tensors; pass one of each")
    mass, h_sum, tokens = 0.0, 0.0, 0
    for b in batches:
        m_b, h_b, t_b = token_mass(model, b, temperature=temperature, batch_size=batch_size,
                                   chunk_size=entropy_cfg.chunk_size)
        mass, h_sum, tokens = mass + m_b / len(batches), h_sum + h_b * t_b, tokens + t_b
    drawn = torch.cat([b["completion_ids"][b["completion_mask"].bool()] for b in batches])
    u = unused_share(mass, steps, draws, drawn=drawn)
    p = clamp_rule(u, reference) if clamp_p is None else clamp_p
    zero = sum(aent.zero_adv_frac(a, group_size) for a in advs) / len(advs)
    gs = [grad_norms(model, b, a, entropy_cfg=entropy_cfg, clamp_p=p, temperature=temperature,
                     batch_size=batch_size) for b, a in zip(batches, advs)]
    pg, ent = sum(g.pg_grad_norm for g in gs) / len(gs), sum(g.ent_grad_norm for g in gs) / len(gs)
    if not pg > 0:
        raise ValueError(f"every group of the {len(batches)} batch(es) has all-equal rewards (zero_adv_frac = "
                         f"{zero:g}), so the policy gradient is 0 and lambda0 cannot be scaled to it; raise "
                         "rollout.prompts_per_step or rollout.group_size, or change seed")
    h0 = sum(g.clamped_entropy * int(b["completion_mask"].sum()) for g, b in zip(gs, batches)) / max(tokens, 1)
    ratios = [g.pg_grad_norm / g.ent_grad_norm for g in gs]
    return Measurements(clamped_entropy=h0, clamp_p=p, pg_grad_norm=pg, ent_grad_norm=ent, unused_share=u,
                        entropy=h_sum / max(tokens, 1), zero_adv_frac=zero, tokens=tokens,
                        vocab_size=int(mass.numel()), batches=len(batches),
                        grad_ratio_range=(min(ratios), max(ratios)))


def starting_batch(cfg, model, tokenizer, train_set: list, reward_fn, autocast=None,
                   step: int = 1) -> tuple[dict, torch.Tensor]:
    """The trainer's rollout batch of global step ``step`` (same prompts, seeds and sampler) from this model, with
    rewards; returns (batch, adv)."""
    import contextlib

    from llm.problems import score
    from llm.train import rollout, step_prompts
    from llm.update import mix_seed

    P, G = cfg.rollout.prompts_per_step, cfg.rollout.group_size
    problems = [train_set[i] for i in step_prompts(cfg.seed, step, len(train_set), P)]
    with autocast or contextlib.nullcontext():
        batch = rollout(cfg, model, tokenizer, problems, [mix_seed(cfg.seed, step, j, 3) for j in range(P)])
    texts = batch.pop("texts")
    batch["reward"] = torch.tensor(score(reward_fn, cfg.reward, texts, [p for p in problems for _ in range(G)],
                                         step), dtype=torch.float32)  # (N,)
    return batch, aent.group_advantages(batch["reward"], G, scale=cfg.adv_scale)


def machine(device: str = "cpu") -> str:
    """The machine in words: CPU model, cores, torch version and device."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}, {device}"


def calibrate(cfg, *, steps: int | None = None, clamp_p: float | None = None, batches: int = 1,
              config_name: str = "", reference: Reference = QWEN_MATH) -> Calibration:
    """Build the starting policy as ``aent train`` does, measure it on step 1's batch and propose the constants.

    Args:
        cfg: a ``llm.config.TrainConfig``.
        steps: planned global steps; None: ``cfg.max_steps``.
        clamp_p: candidate p in [0, 1); None: the rule's p.
        batches: measure on the batches of steps 1..batches, all sampled from the starting policy (>= 1).
        config_name: how the report names the config.
        reference: the published setting whose proportions are kept.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from llm.policy import build_policy
    from llm.problems import load_problems, make_reward_fn
    from llm.train import run_entropy_config

    steps = cfg.max_steps if steps is None else steps
    check(is_int(steps) and steps >= 1, "--steps", "an int >= 1", steps)
    check(clamp_p is None or is_num(clamp_p) and 0 <= clamp_p < 1, "--p", "in [0, 1)", clamp_p)
    check(is_int(batches) and batches >= 1, "--batches", "an int >= 1", batches)
    t0 = time.perf_counter()
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision)
    set_seed(cfg.seed)
    train_set, _ = load_problems(cfg)
    model, tokenizer = build_policy(cfg.model, cfg.data, train_set, cache_dir=cfg.cache_dir, progress=cfg.progress)
    model = model.to(accelerator.device)
    reward_fn = make_reward_fn(cfg.reward)
    rolled = [starting_batch(cfg, model, tokenizer, train_set, reward_fn, accelerator.autocast(), step=k)
              for k in range(1, batches + 1)]
    with accelerator.autocast():
        m = measure(model, [b for b, _ in rolled], [a for _, a in rolled], steps=steps,
                    group_size=cfg.rollout.group_size,
                    entropy_cfg=run_entropy_config(cfg), temperature=cfg.rollout.temperature, clamp_p=clamp_p,
                    reference=reference, batch_size=cfg.optim.micro_batch_size)
    r = cfg.rollout
    reward = float(torch.cat([b["reward"] for b, _ in rolled]).mean())
    which = "step 1's rollout" if batches == 1 else f"the rollouts of steps 1-{batches}, each from the starting policy"
    desc = (f"{which}: {r.prompts_per_step} prompts x {r.group_size} samples per step, {m.tokens} response tokens, "
            f"T = {r.temperature:g}, top_p = {r.top_p:g}, reward mean {reward:.3f}")
    return Calibration(measurements=m, proposal=propose(m, steps, reference=reference), steps=steps,
                       config=config_name, batch=desc, machine=machine(str(accelerator.device)),
                       seconds=time.perf_counter() - t0)
