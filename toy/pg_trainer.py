"""Policy-gradient training of tabular softmax policies on the sparse bandit, with any aent entropy control.

The policy of run i is pi_i = softmax(z_i) over |A| arms, its parameters the logits z_i themselves (the
tabular softmax of the theory). R independent runs (seeds x tasks x entropy controls) are the rows of one
(R, |A|) logits tensor and are trained together; they share nothing but the sampling generator, and each row has
its own aent.EntropyControl (its own method, coefficient and controller state).

Estimators (``ToyTrainConfig.estimator``):
- ``"exact"``: gradient ascent on J(z) = V(z) + lambda * H_kind(z), V = sum_a pi(a) r(a), by autograd.
- ``"reinforce"``: G arms a_j ~ pi per step, advantage r(a_j) (no baseline; unbiased).
- ``"rloo"``: advantage r(a_j) - mean_{l != j} r(a_l) (leave-one-out baseline; unbiased).
- ``"grpo"``: advantage (r - mean) / (std + eps) within the group (aent.group_advantages; the paper-faithful
  estimator of AEnt, arXiv 2509.03493, Figure 1; its scale is biased).
Sampled estimators minimise the PPO clipped surrogate (aent.ppo_clip_loss) over ``ppo_epochs`` passes on the
step's batch (one pass: the plain policy gradient, ratio 1, nothing clipped), with the entropy term of the row's
``EntropyConfig.method``.

Entropy control: every option of aent.EntropyConfig. Methods whose loss is "surrogate - lambda * H" (none,
entropy_bonus, clamped_bonus, aent, sac, threshold) take a fast path: the entropy of a run's single state is
computed once per row instead of once per sampled arm (identical gradient: tests/toy/test_pg_trainer.py compares it
with aent.EntropyControl.loss). Every other method calls aent.EntropyControl.loss with the run's G samples as
the G tokens of one sequence.

Departures from the LLM trainer: one state, so ``response_len`` is 1 and the "token mean" is a mean over a run's
G sampled arms; per-run losses are summed over runs so that a run's gradient does not depend on how many runs
share the tensor. The controllers see the entropies of the policy that sampled the step (the LLM trainer's
"measured during the updates" with one update per step). Metrics are means over runs; ``accuracy`` is the
probability mass on the optimal arms (the success probability) of the policy that sampled the step;
``sampled_accuracy`` (sampled estimators) is the fraction of the step's sampled arms that are optimal.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from aent.config import EntropyConfig
from aent.entropy import entropy
from aent.regularizer import BONUS_ENTROPY, EntropyControl
from toy.pg import inverse_cdf
from toy.pg_step import advantages, exact_backward, sampled_backward
from toy.pg_trainer_config import ESTIMATORS, INITS, OPTIMIZERS, ToyTrainConfig
from toy.tasks import BanditTask

__all__ = ["ESTIMATORS", "INITS", "OPTIMIZERS", "BanditRun", "ToyTrainConfig", "bandit_rewards", "init_logits",
           "train", "train_bandit"]


def bandit_rewards(cfg: ToyTrainConfig) -> Tensor:
    """(n_seeds, n_arms) float32 reward table, row i from BanditTask(..., seed=cfg.seed + i)."""
    rows = [BanditTask(n_arms=cfg.n_arms, m_optimal=cfg.m_optimal, pattern=cfg.pattern, gap=cfg.gap,
                       n_distractors=min(10, cfg.n_arms - cfg.m_optimal), seed=cfg.seed + i).rewards
            for i in range(cfg.n_seeds)]
    return torch.as_tensor(np.stack(rows), dtype=torch.float32)


@dataclass
class BanditRun:
    """Result of :func:`train_bandit`.

    Attributes:
        metrics: one dict per global step (the shared metric names; means over runs).
        accuracy: (steps + 1, R) success probability of every run before each step, and after the last one.
        entropy: (steps + 1, R) full entropy (nats) of every run at the same points.
        ent_coef: (steps, R) entropy coefficient each run applied at each step.
        logits: (R, |A|) final logits.
    """

    metrics: list[dict]
    accuracy: Tensor
    entropy: Tensor
    ent_coef: Tensor
    logits: Tensor


def init_logits(cfg: ToyTrainConfig, rewards: Tensor, row_seeds: Sequence[int]) -> Tensor:
    """Initial logits (R, |A|): zeros, or init_scale * N(0, 1) from a generator seeded per row.

    With ``opt_quantile`` set, every optimal arm (reward equal to its row's maximum) gets the logit found at that
    quantile of its row's draw: plausible but not the mode, like a correct token under a pretrained prior.
    """
    n_rows, n_arms = rewards.shape
    z = torch.zeros(n_rows, n_arms)
    if cfg.init == "gaussian":
        for i, s in enumerate(row_seeds):
            gen = torch.Generator().manual_seed(1_000_003 * int(s) + 17)
            z[i] = cfg.init_scale * torch.randn(n_arms, generator=gen)
    if cfg.opt_quantile is not None:
        k = min(n_arms, max(1, int(round(cfg.opt_quantile * n_arms))))
        level = z.kthvalue(k, dim=1).values[:, None]
        z = torch.where(rewards >= rewards.max(dim=1, keepdim=True).values, level, z)
    return z


def _optimizer(cfg: ToyTrainConfig, z: Tensor) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam([z], lr=cfg.lr)
    return torch.optim.SGD([z], lr=cfg.lr)


def _nanmean(x: Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")


def _check_rows(cfg: ToyTrainConfig, rewards: Tensor, row_seeds, entropy_cfgs, logits0):
    n_rows = rewards.shape[0]
    row_seeds = [cfg.seed + i for i in range(n_rows)] if row_seeds is None else list(row_seeds)
    if len(row_seeds) != n_rows:
        raise ValueError(f"row_seeds must have one seed per reward row ({n_rows}), got {len(row_seeds)}")
    ecfgs = [cfg.entropy] * n_rows if entropy_cfgs is None else list(entropy_cfgs)
    if len(ecfgs) != n_rows or not all(isinstance(e, EntropyConfig) for e in ecfgs):
        raise ValueError(f"entropy_cfgs must hold one aent.EntropyConfig per reward row ({n_rows})")
    if cfg.estimator == "exact" and any(e.method not in BONUS_ENTROPY for e in ecfgs):
        raise ValueError(f"estimator='exact' supports entropy methods {tuple(BONUS_ENTROPY)} only")
    if logits0 is not None and tuple(logits0.shape) != tuple(rewards.shape):
        raise ValueError(f"logits0 must have the shape of rewards {tuple(rewards.shape)}, got {tuple(logits0.shape)}")
    return row_seeds, ecfgs


def train_bandit(cfg: ToyTrainConfig, rewards: Tensor | None = None, row_seeds: Sequence[int] | None = None,
                 entropy_cfgs: Sequence[EntropyConfig] | None = None, logits0: Tensor | None = None,
                 progress=None, sample_rewards=None) -> BanditRun:
    """Train R softmax policies on their reward rows with cfg's estimator and per-row entropy controls.

    Args:
        cfg: the run configuration.
        rewards: (R, |A|) reward of every arm for each run; default ``bandit_rewards(cfg)`` (R = n_seeds).
            The task fields of ``cfg`` (n_arms, m_optimal, pattern, gap) are ignored when it is given.
        row_seeds: (R,) seeds of the initial logits; default ``cfg.seed + i``.
        entropy_cfgs: (R,) one aent.EntropyConfig per run; default ``cfg.entropy`` for every run.
        logits0: (R, |A|) initial logits; default :func:`init_logits`.
        progress: optional callable(n) called after each step (a tqdm bar's ``update``).
        sample_rewards: optional callable(step, actions) -> (R, G) rewards of the step's sampled arms, used
            instead of looking them up in ``rewards`` (sampled estimators only): per-sample random rewards such
            as toy.experiments.clipping.CoinFlipRewards. ``rewards`` then serves for the success probability only.

    Returns:
        A :class:`BanditRun` (per-step metrics, per-run success-probability, entropy and coefficient curves).
    """
    rewards = bandit_rewards(cfg) if rewards is None else torch.as_tensor(rewards).float()
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must have shape (R, n_arms >= 2), got {tuple(rewards.shape)}")
    row_seeds, ecfgs = _check_rows(cfg, rewards, row_seeds, entropy_cfgs, logits0)
    if sample_rewards is not None and cfg.estimator == "exact":
        raise ValueError("sample_rewards needs a sampled estimator; estimator='exact' uses the reward table")
    optimal = (rewards >= rewards.max(dim=1, keepdim=True).values).float()
    z0 = init_logits(cfg, rewards, row_seeds) if logits0 is None else logits0.detach().float().clone()
    z = z0.requires_grad_(True)
    opt = _optimizer(cfg, z)
    controls = [EntropyControl(e) for e in ecfgs]
    gen = torch.Generator().manual_seed(cfg.seed)
    seed_list = sorted(set(row_seeds))
    seed_row = torch.tensor([seed_list.index(s) for s in row_seeds])
    acc_curve, ent_curve, coef_curve, metrics = [], [], [], []
    for step in range(cfg.steps):
        t0 = time.perf_counter()
        with torch.no_grad():
            probs = z.softmax(dim=-1)
            acc = (probs * optimal).sum(dim=-1)
        coefs = torch.tensor([c.ent_coef for c in controls])
        rec: dict = {"step": step}
        if cfg.estimator == "exact":
            t1 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            st, h_full, h_clamp = exact_backward(z, rewards, ecfgs, coefs, cfg.track_clamped)
            grad_norm = z.grad.norm(dim=1).mean()
            opt.step()
        else:
            with torch.no_grad():
                if cfg.common_random_numbers:
                    u = torch.rand(len(seed_list), cfg.group_size, generator=gen)[seed_row]  # (R, G)
                    actions = inverse_cdf(probs, u)
                else:
                    actions = torch.multinomial(probs, cfg.group_size, replacement=True, generator=gen)
                r = rewards.gather(1, actions) if sample_rewards is None else sample_rewards(step, actions)
                adv = advantages(r, cfg.estimator)
                old_logp = probs.gather(1, actions).log()
            t1 = time.perf_counter()
            st = {"reward_mean": float(r.mean()), "sampled_accuracy": float(optimal.gather(1, actions).mean())}
            parts = []
            for epoch in range(cfg.ppo_epochs):
                opt.zero_grad(set_to_none=True)
                part, hf, hc = sampled_backward(z, actions, old_logp, adv, ecfgs, controls, coefs,
                                                 cfg.track_clamped)
                if epoch == 0:  # entropies of the policy that sampled the step
                    h_full, h_clamp = hf, hc
                grad_norm = z.grad.norm(dim=1).mean()
                opt.step()
                parts.append(part)
            st.update({k: sum(p[k] for p in parts) / len(parts) for k in parts[0]})
        for i, ctl in enumerate(controls):
            ctl.step_end({"entropy": float(h_full[i]), "clamped_entropy": float(h_clamp[i]),
                          "sampled_entropy": float(h_full[i])})  # exact, in place of -mean log pi_old
        acc_curve.append(acc)
        ent_curve.append(h_full)
        coef_curve.append(coefs)
        rec.update(st)
        rec.update({"accuracy": float(acc.mean()), "entropy": float(h_full.mean()),
                    "clamped_entropy": _nanmean(h_clamp), "ent_coef": float(coefs.mean()),
                    "pos_weight": sum(c.pos_weight for c in controls) / len(controls), "response_len": 1.0,
                    "grad_norm": float(grad_norm), "time_generate_s": t1 - t0,
                    "time_train_s": time.perf_counter() - t1})
        metrics.append(rec)
        if progress is not None:
            progress(1)
    with torch.no_grad():
        acc_curve.append((z.softmax(dim=-1) * optimal).sum(dim=-1))
        ent_curve.append(entropy(z))
    return BanditRun(metrics=metrics, accuracy=torch.stack(acc_curve), entropy=torch.stack(ent_curve),
                     ent_coef=torch.stack(coef_curve), logits=z.detach())


def train(cfg: ToyTrainConfig) -> list[dict]:
    """Train ``cfg.n_seeds`` runs of cfg's bandit; returns the per-step metrics (means over runs)."""
    return train_bandit(cfg).metrics
