"""One policy-gradient step of the bandit trainer (:func:`toy.pg_trainer.train_bandit`) on R runs at once: the
advantages of a run's G sampled arms, and the backward pass of the sampled (PPO-clip surrogate) and exact
(V + lambda * H) objectives with every row's entropy term.

Methods whose loss is "surrogate - lambda * H" (``aent.regularizer.BONUS_ENTROPY``) take a fast path: the entropy of
a run's single state is computed once per row instead of once per sampled arm (identical gradient:
tests/toy/test_pg_trainer.py compares it with aent.EntropyControl.loss); every other method calls
aent.EntropyControl.loss with the run's G samples as the G tokens of one sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from aent.advantages import group_advantages
from aent.aggregate import aggregate_loss
from aent.config import EntropyConfig
from aent.entropy import clamped_entropy, entropy
from aent.methods import METHOD_SPECS
from aent.ppo import ppo_clip_loss
from aent.regularizer import BONUS_ENTROPY, EntropyControl
from toy.pg import baseline_advantages

__all__ = ["advantages", "exact_backward", "sampled_backward"]


def advantages(r: Tensor, estimator: str) -> Tensor:
    """(R, G) advantages of a run's G sampled rewards (one group per run)."""
    n_rows, g = r.shape
    if estimator == "reinforce":
        return r
    if estimator == "rloo":
        return baseline_advantages(r, "rloo")
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
    it neither in a loss nor as the signal of its controller (AEnt) when ``track_clamped`` is False.
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
        needed = in_loss | torch.tensor([track_clamped or METHOD_SPECS[ecfgs[i].method].signal == "clamped_entropy"
                                         for i in idx.tolist()])
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


def sampled_backward(z, actions, old_logp, adv, ecfgs, controls, coefs, track_clamped):
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


def exact_backward(z: Tensor, rewards: Tensor, ecfgs, coefs: Tensor, track_clamped: bool):
    """Fills z.grad with the gradient of -(V + lambda * H_kind) summed over runs; returns statistics."""
    v = (z.softmax(dim=-1) * rewards).sum(dim=-1)
    full_bonus, clamped_grad, h_full, h_clamp = _entropy_terms(z, ecfgs, coefs, track_clamped)
    (-(v.sum() + full_bonus)).backward()
    if clamped_grad is not None:
        z.grad.sub_(clamped_grad)
    v = v.detach()
    stats = {"reward_mean": float(v.mean()), "policy_loss": -float(v.mean()), "clip_frac": 0.0, "approx_kl": 0.0}
    return stats, h_full, h_clamp
