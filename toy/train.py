"""Policy-gradient training of tabular softmax policies on the sparse bandit, with any aent entropy control.

The policy of run i is pi_i = softmax(z_i) over |A| arms, its parameters the logits z_i themselves (the
tabular softmax of the theory). R independent runs (seeds x tasks x entropy controls) are the rows of one
(R, |A|) logits tensor and are trained together; they share nothing but the sampling generator, and each row has
its own aent.EntropyControl (its own method, coefficient and controller state).

Estimators (``TrainConfig.estimator``):
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
computed once per row instead of once per sampled arm (identical gradient: tests/toy/test_train.py compares it
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

from aent.advantages import group_advantages
from aent.aggregate import aggregate_loss
from aent.config import EntropyConfig
from aent.entropy import clamped_entropy, entropy
from aent.ppo import ppo_clip_loss
from aent.regularizer import BONUS_ENTROPY, EntropyControl
from toy.pg import inverse_cdf
from toy.tasks import BanditTask
from toy.train_config import ESTIMATORS, INITS, OPTIMIZERS, TrainConfig

__all__ = ["ESTIMATORS", "INITS", "OPTIMIZERS", "BanditRun", "TrainConfig", "bandit_rewards", "init_logits",
           "train", "train_bandit"]

def bandit_rewards(cfg: TrainConfig) -> Tensor:
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


def init_logits(cfg: TrainConfig, rewards: Tensor, row_seeds: Sequence[int]) -> Tensor:
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


# ------------------------------------------------------------------------------------------- one step's maths
def _advantages(r: Tensor, estimator: str) -> Tensor:
    """(R, G) advantages of a run's G sampled rewards (one group per run)."""
    n_rows, g = r.shape
    if estimator == "reinforce":
        return r
    if estimator == "rloo":
        return (r - r.mean(dim=1, keepdim=True)) * (g / (g - 1))
    return group_advantages(r.reshape(-1), g, scale="std").view(n_rows, g)


def _groups(keys: Sequence) -> dict:
    """{key: LongTensor of the row indices with that key}, in first-seen order."""
    out: dict = {}
    for i, k in enumerate(keys):
        out.setdefault(k, []).append(i)
    return {k: torch.tensor(v) for k, v in out.items()}


def _bonus_kind(ecfg: EntropyConfig) -> tuple | None:
    """Which entropy a fast method puts in its loss: None, ("full",) or ("clamped", p)."""
    kind = BONUS_ENTROPY.get(ecfg.method)
    return None if kind is None else ("full",) if kind == "full" else ("clamped", ecfg.clamp_p)


def _entropy_terms(z: Tensor, ecfgs: Sequence[EntropyConfig], coefs: Tensor, track_clamped: bool
                   ) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
    """The entropy bonus sum_i lambda_i H_kind_i(z_i) and the full / clamped entropies (R,) of every row.

    Returns ``(full_bonus, clamped_grad, h_full, h_clamp)``: ``full_bonus`` is the differentiable full-entropy
    part (rows without a full bonus get weight 0, so one call serves every row); ``clamped_grad`` is the
    gradient (R, |A|) of the clamped part, computed on the rows that need it only (a clamped entropy costs a
    selection over |A| per row, and indexing the (R, |A|) logits inside the graph would cost a full-size
    scatter per use), or None. The clamped entropy of a row uses its own clamp_p; it is NaN for rows that need
    it neither in a loss nor in an AEnt controller when ``track_clamped`` is False.
    """
    kinds = [_bonus_kind(e) if float(coefs[i]) != 0.0 else None for i, e in enumerate(ecfgs)]
    full_w = torch.where(torch.tensor([k == ("full",) for k in kinds]), coefs, torch.zeros_like(coefs))
    if bool(full_w.any()) and torch.is_grad_enabled():
        h_full = entropy(z)
        full_bonus = (full_w * h_full).sum()
        h_full = h_full.detach()
    else:
        with torch.no_grad():
            h_full = entropy(z)
        full_bonus = z.new_zeros(())
    h_clamp = z.new_full((len(z),), float("nan"))
    clamped_grad = None
    for key, idx in _groups([("clamped", e.clamp_p) for e in ecfgs]).items():
        in_loss = torch.tensor([kinds[i] == key for i in idx.tolist()])
        needed = in_loss | torch.tensor([track_clamped or ecfgs[i].method == "aent" for i in idx.tolist()])
        idx, in_loss = idx[needed], in_loss[needed]
        if not len(idx):
            continue
        sub = z.detach()[idx].requires_grad_(bool(in_loss.any()))
        with torch.set_grad_enabled(bool(in_loss.any())):
            h = clamped_entropy(sub, key[1])
        if in_loss.any():
            (g,) = torch.autograd.grad((coefs[idx] * in_loss * h).sum(), sub)
            clamped_grad = torch.zeros_like(z.detach()) if clamped_grad is None else clamped_grad
            clamped_grad.index_add_(0, idx, g)
        h_clamp[idx] = h.detach()
    return full_bonus, clamped_grad, h_full, h_clamp


def _surrogate(z: Tensor, actions: Tensor, old_logp: Tensor, adv: Tensor, ecfgs: Sequence[EntropyConfig],
               fast: Tensor) -> tuple[Tensor, Tensor]:
    """Sum over the ``fast`` rows of their aggregated PPO-clip loss, and the (R, G) clipped mask."""
    logp = z.gather(1, actions) - torch.logsumexp(z, dim=1, keepdim=True)
    total, clipped = z.new_zeros(()), torch.zeros_like(actions, dtype=torch.bool)
    keys = [(e.eps_low, e.eps_high, e.dual_clip, e.loss_agg, e.norm_const) if f else None
            for e, f in zip(ecfgs, fast.tolist())]
    for key, sub in _groups(keys).items():
        if key is None:
            continue
        lo, hi, dual, agg, norm = key
        loss_tok, clip = ppo_clip_loss(logp[sub], old_logp[sub], adv[sub], eps_low=lo, eps_high=hi, dual_clip=dual)
        # aggregate_loss averages over runs (sequences); times the number of runs gives the sum over runs.
        total = total + aggregate_loss(loss_tok, torch.ones_like(loss_tok), agg, norm_const=norm) * len(sub)
        clipped[sub] = clip
    return total, clipped


def _generic_loss(z: Tensor, actions: Tensor, old_logp: Tensor, adv: Tensor, controls: Sequence[EntropyControl],
                  rows: Tensor) -> tuple[Tensor, Tensor]:
    """Sum over ``rows`` of aent.EntropyControl.loss, a run's G arms being the G tokens of one sequence."""
    g = actions.shape[1]
    total, clip = z.new_zeros(()), z.new_zeros(len(rows))
    for j, i in enumerate(rows.tolist()):
        out = controls[i].loss(logits=z[i].expand(1, g, -1), actions=actions[i : i + 1],
                               old_logp=old_logp[i : i + 1], adv=adv[i : i + 1], mask=torch.ones(1, g))
        total = total + out.loss
        clip[j] = out.metrics["clip_frac"]
    return total, clip


def _sampled_backward(z, actions, old_logp, adv, ecfgs, controls, coefs, track_clamped):
    """One PPO pass: fills z.grad with the gradient of the total loss (sum over runs); returns statistics."""
    n_rows = len(z)
    fast = torch.tensor([e.method in BONUS_ENTROPY for e in ecfgs])
    clip_frac = z.new_zeros(n_rows)
    loss, clipped = _surrogate(z, actions, old_logp, adv, ecfgs, fast)
    clip_frac[fast] = clipped[fast].float().mean(dim=1)
    full_bonus, clamped_grad, h_full, h_clamp = _entropy_terms(z, ecfgs, coefs * fast, track_clamped)
    slow_rows = (~fast).nonzero().squeeze(1)
    if len(slow_rows):
        gl, clip = _generic_loss(z, actions, old_logp, adv, controls, slow_rows)
        loss = loss + gl
        clip_frac[slow_rows] = clip
    (loss - full_bonus).backward()
    if clamped_grad is not None:
        z.grad.sub_(clamped_grad)
    with torch.no_grad():
        log_ratio = z.gather(1, actions) - torch.logsumexp(z, dim=1, keepdim=True) - old_logp
        kl = (torch.expm1(log_ratio) - log_ratio).mean()
    bonus = float(full_bonus.detach()) + float((coefs * fast * torch.nan_to_num(h_clamp) *
                                               torch.tensor([_bonus_kind(e) not in (None, ("full",)) for e in ecfgs])
                                               ).sum())
    stats = {"policy_loss": float(loss.detach()) / n_rows, "entropy_loss": -bonus / n_rows,
             "clip_frac": float(clip_frac.mean()), "approx_kl": float(kl)}
    return stats, h_full, h_clamp


def _exact_backward(z: Tensor, rewards: Tensor, ecfgs, coefs: Tensor, track_clamped: bool):
    """Fills z.grad with the gradient of -(V + lambda * H_kind) summed over runs; returns statistics."""
    v = (z.softmax(dim=-1) * rewards).sum(dim=-1)
    full_bonus, clamped_grad, h_full, h_clamp = _entropy_terms(z, ecfgs, coefs, track_clamped)
    (-(v.sum() + full_bonus)).backward()
    if clamped_grad is not None:
        z.grad.sub_(clamped_grad)
    v = v.detach()
    stats = {"reward_mean": float(v.mean()), "policy_loss": -float(v.mean()), "clip_frac": 0.0, "approx_kl": 0.0}
    return stats, h_full, h_clamp


# ------------------------------------------------------------------------------------------------ the loop
def _optimizer(cfg: TrainConfig, z: Tensor) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam([z], lr=cfg.lr)
    return torch.optim.SGD([z], lr=cfg.lr)


def _nanmean(x: Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")


def _check_rows(cfg: TrainConfig, rewards: Tensor, row_seeds, entropy_cfgs, logits0):
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


def train_bandit(cfg: TrainConfig, rewards: Tensor | None = None, row_seeds: Sequence[int] | None = None,
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
            st, h_full, h_clamp = _exact_backward(z, rewards, ecfgs, coefs, cfg.track_clamped)
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
                adv = _advantages(r, cfg.estimator)
                old_logp = probs.gather(1, actions).log()
            t1 = time.perf_counter()
            st = {"reward_mean": float(r.mean()), "sampled_accuracy": float(optimal.gather(1, actions).mean())}
            parts = []
            for epoch in range(cfg.ppo_epochs):
                opt.zero_grad(set_to_none=True)
                part, hf, hc = _sampled_backward(z, actions, old_logp, adv, ecfgs, controls, coefs,
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


def train(cfg: TrainConfig) -> list[dict]:
    """Train ``cfg.n_seeds`` runs of cfg's bandit; returns the per-step metrics (means over runs)."""
    return train_bandit(cfg).metrics
