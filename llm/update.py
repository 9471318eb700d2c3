"""One global step's policy updates: micro-batches of the rollout batch, the PPO passes, old log-probs.

Called by :func:`llm.train.train` (see its module docstring for the loss and the departures from verl). Every
function takes the run's objects as one :class:`llm.hooks.Run`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from llm.hooks import Run
from llm.policy import chunked_head, loss_inputs, loss_logprobs
from llm.seeding import mix_seed

__all__ = ["epoch_micro_batches", "micro_slices", "params_finite", "ppo_update", "recompute_old_logp", "update_head"]



def micro_slices(batch: dict, rows: torch.Tensor) -> dict:
    """The rows of a micro-batch with the padding columns that no row uses cut away."""
    p_mask, c_mask = batch["prompt_mask"][rows], batch["completion_mask"][rows]
    first = int((p_mask.sum(0) > 0).nonzero()[0]) if p_mask.any() else 0
    last = max(1, int(c_mask.sum(1).max()))
    return {"prompt_ids": batch["prompt_ids"][rows, first:], "prompt_mask": p_mask[:, first:],
            "completion_ids": batch["completion_ids"][rows, :last], "completion_mask": c_mask[:, :last],
            "old_logp": batch["old_logp"][rows, :last]}


def epoch_micro_batches(cfg, step: int, epoch: int, n: int, world: int, rank: int) -> list:
    """One PPO epoch's mini-batches: (all rows of the mini-batch, this process's micro-batches of rows)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(mix_seed(cfg.seed, step, epoch, 11)))
    m = cfg.mini_batch
    out = []
    for k in range(n // m):
        idx = perm[k * m:(k + 1) * m]
        mine = idx[rank * m // world:(rank + 1) * m // world]
        out.append((idx, list(mine.split(cfg.optim.micro_batch_size))))
    return out


def update_head(run: Run):
    """The LM-head weight for the chunked loss (``optim.chunked_loss``), or None: materialised logits."""
    if not run.cfg.optim.chunked_loss:
        return None
    return chunked_head(run.model, str(run.accelerator.distributed_type))


def recompute_old_logp(run: Run, step: int, batch: dict) -> None:
    """Replace ``batch["old_logp"]`` by a no-grad forward of the update's own code path (verl's compute_log_prob).

    Same micro-batches as the update's first epoch, same column trimming, autocast, train mode and log-prob
    computation (chunked from hidden states, or ``aent.token_logprobs`` on the logits), so the first mini-batch
    starts at ratio exactly 1. Each process computes its share of the rows; a sum over processes gives every
    process the whole (N, Tc) tensor.
    """
    cfg, accelerator, model = run.cfg, run.accelerator, run.model
    dev, world, rank = accelerator.device, accelerator.num_processes, accelerator.process_index
    n = batch["completion_ids"].shape[0]
    out = torch.zeros(batch["old_logp"].shape, dtype=torch.float32)  # (N, Tc)
    head = update_head(run)
    model.train()
    with torch.no_grad():
        for _, micros in epoch_micro_batches(cfg, step, 0, n, world, rank):
            for rows in micros:
                mb = {key: v.to(dev) for key, v in micro_slices(batch, rows).items()}
                with accelerator.autocast():
                    lp = loss_logprobs(model, mb, head, cfg.rollout.temperature, cfg.entropy.chunk_size)  # (b, Tc')
                out[rows, :lp.shape[1]] = (lp * mb["completion_mask"]).float().cpu()
    if world > 1:
        out = accelerator.reduce(out.to(dev), "sum").cpu()
    batch["old_logp"] = out


def ppo_update(run: Run, step: int, batch: dict, adv: torch.Tensor) -> dict:
    """``ppo_epochs`` passes of mini-batch updates over the global rollout batch; returns token-mean metrics.

    Every process holds the whole global batch; mini-batch k of an epoch is the same seeded set of rows on
    all processes, and process r takes the r-th contiguous share of it. Micro-batch losses are scaled by their
    share of the mini-batch's tokens (token-mean aggregation) or sequences, times the number of processes
    (DDP averages gradients), so the accumulated gradient is that of one loss over the whole mini-batch.

    Args:
        run: the run's objects (cfg, accelerator, model, optimizer, scheduler, control, log).
        step: global step (seeds the mini-batch shuffles).
        batch: the global rollout batch (``llm.hooks.StepState.batch``).
        adv: (N,) group advantages.

    Returns:
        Token-mean loss metrics over every micro-batch of every process, plus grad_norm, updates,
        skipped_updates and lr.
    """
    cfg, accelerator, model, control = run.cfg, run.accelerator, run.model, run.control
    optimizer, scheduler, log = run.optimizer, run.scheduler, run.log
    dev = accelerator.device
    n, m_global = batch["completion_ids"].shape[0], cfg.mini_batch
    world, rank = accelerator.num_processes, accelerator.process_index
    token_mean = cfg.entropy.loss_agg == "token-mean"
    mask = batch["completion_mask"].float()
    head = update_head(run)  # None: materialised logits
    sums: dict[str, float] = {}
    weight_sum, updates, skipped, norms = 0.0, 0, 0, []
    model.train()
    for epoch in range(cfg.optim.ppo_epochs):
        for idx, micros in epoch_micro_batches(cfg, step, epoch, n, world, rank):
            total = float(mask[idx].sum()) if token_mean else float(m_global)
            bad = False
            for rows in micros:
                mb = {key: v.to(dev) for key, v in micro_slices(batch, rows).items()}
                # accumulate(): no gradient all-reduce (DDP) / no optimizer step (DeepSpeed) until the last micro.
                with accelerator.accumulate(model), accelerator.autocast():
                    out = control.loss(**loss_inputs(model, mb, head), actions=mb["completion_ids"],
                                       old_logp=mb["old_logp"], adv=adv[rows].to(dev), mask=mb["completion_mask"],
                                       temperature=cfg.rollout.temperature)
                    share = float(mb["completion_mask"].sum()) if token_mean else float(len(rows))
                    finite = bool(torch.isfinite(out.loss.detach()))
                    # A non-finite loss must not reach the gradients (or the other processes' all-reduce).
                    loss = out.loss if finite else out.loss.nan_to_num(0.0, 0.0, 0.0) * 0.0
                    # accelerate / DeepSpeed divide by the accumulation steps; the share weighting is exact.
                    gas = accelerator.gradient_accumulation_steps
                    accelerator.backward(loss * (share / max(total, 1.0) * world * gas))
                bad = bad or not finite
                tokens = float(mb["completion_mask"].sum())
                for key, v in out.metrics.items():
                    sums[key] = sums.get(key, 0.0) + tokens * float(v)
                weight_sum += tokens
            bad_any = float(accelerator.reduce(torch.tensor([float(bad)], device=dev), "sum")[0]) > 0
            norm = accelerator.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            norm = float(norm) if norm is not None else 0.0  # DeepSpeed clips inside its step and returns None
            if bad_any or not math.isfinite(norm):
                optimizer.zero_grad(set_to_none=True)
                skipped += 1
                msg = f"step {step}: non-finite loss or gradient (grad_norm={norm:.3g}); optimizer update skipped"
                log.write(f"warning: {msg}")
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
                continue
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            updates += 1
            norms.append(norm)
    # Token-weighted means over every micro-batch of every process (non-finite values stay NaN).
    keys = sorted(sums)
    vec = torch.tensor([sums[k] for k in keys] + [weight_sum], dtype=torch.float64, device=dev)
    vec = accelerator.reduce(vec, "sum")
    out = {k: float(vec[i] / max(float(vec[-1]), 1.0)) for i, k in enumerate(keys)}
    out.update(grad_norm=float(np.mean(norms)) if norms else float("nan"), updates=updates, skipped_updates=skipped,
               lr=float(scheduler.get_last_lr()[0]))
    return out


def params_finite(accelerator, model) -> bool:
    """True when every parameter of every process is finite."""
    bad = sum(int(not bool(torch.isfinite(p).all())) for p in model.parameters())
    return float(accelerator.reduce(torch.tensor([float(bad)], device=accelerator.device), "sum")[0]) == 0
