"""The clip study of claim 5 (docs/toy/theory.md): does clip-low keep entropy up and clip-high push it down?

Two questions with different answers, kept apart:

- **per update** (the mechanism, first order): in a second PPO epoch, the updates that clip-low removes
  (A < 0 on tokens whose ratio fell below 1 - eps) would have lowered the entropy, those that clip-high removes
  (A > 0, ratio above 1 + eps) would have raised it (toy.dynamics.ppo_token_step, -Cov(log pi, dz));
- **over training** (the claim of arXiv 2509.26114, and the clipping finding of 2511.05993): PPO trained on
  *random rewards* ends with more entropy under clip-low only than under clip-high only.

Settings of the training study (each a paired experiment over seeds, every arm of a seed sharing the initial
logits, the sample stream and the rewards):

- ``coin_flip`` (primary, the claim's own setting): each sampled arm's reward is a fresh Bernoulli(1/2) draw,
  independent of the action (:class:`CoinFlipRewards`). No arm is better, so any entropy trend comes from the
  update rule alone;
- ``learnable`` (second, outside the claim's premise): each run draws one Bernoulli(1/2) reward per arm once
  (a fixed table), so within a run half the arms really are better and the policy learns to prefer them.

Arms: ``no_clip`` (eps_low = 1, eps_high = 1e6: nothing clips), ``clip_low`` (eps_low = eps only), ``clip_high``
(eps_high = eps only), ``both`` (eps, eps; reported, not tested).

Claims, stated before the verdict runs, each with the outcome that refutes it (CLAIMS below):

1. per update, removing the clip-low updates raises the entropy change (mean first-order effect > 0);
2. per update, removing the clip-high updates lowers it (mean < 0);
3-5. over training, in each setting: clip_low - clip_high > delta, clip_low - no_clip > delta and
   no_clip - clip_high > delta, for the entropy averaged over the training curve (steps 0..T).

Decision rule (fixed in advance): delta = 0.01 * log|A| nats (1% of the largest possible entropy) for the
training claims; 0 for the per-update claims, which are sign claims of a first-order term. Each claim is a
one-sample t test (paired across seeds for training, across independent states per update) whose 95% interval
and two-sided p come from the same t distribution (toy.experiments.paired_t); the 8 p-values are Holm-adjusted as
one family. "held": adjusted p < 0.05 and the effect beyond delta in the claimed direction; "did not hold": the
95% interval lies below delta (an effect of at least delta in the claimed direction is excluded); else
"inconclusive". The study's settings (eps, lr, epochs, steps, |A|, logit scale) are those of the earlier
learnable-reward study, not chosen for this one; the verdict seeds start at ``clip_seed0``, disjoint from the
pilot seeds 0..2047 (issue 24's measurement and this module's pilot).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from aent.config import EntropyConfig
from toy.dynamics import ppo_token_step, predicted_entropy_change
from toy.experiments.common import mean_std, progress, verdict
from toy.experiments.paired_t import holm, t_test
from toy.pg_trainer import ToyTrainConfig, train_bandit

__all__ = ["ALPHA", "ARM_COLORS", "CLAIMS", "SETTINGS", "CoinFlipRewards", "claim_status", "judge_clipping",
           "mechanism", "min_effect", "plot_setting", "simulate_clipping"]

ALPHA = 0.05
NO_CLIP_HIGH = 1e6  # eps_high this large never clips
SETTINGS = {"coin_flip": "coin-flip rewards (a fresh Bernoulli(1/2) per sample; primary)",
            "learnable": "learnable rewards (a fixed Bernoulli(1/2) table per run; outside the claim's premise)"}
ARM_COLORS = {"no_clip": "C0", "clip_low": "C1", "clip_high": "C2", "both": "C7"}
# (key, setting, arm a, arm b, claim): each training claim says mean_entropy(a) - mean_entropy(b) > delta.
CLAIMS = [("per_update_low", None, None, None, "removing the clip-low updates raises the entropy change"),
          ("per_update_high", None, None, None, "removing the clip-high updates lowers the entropy change")] + [
    (f"{s}_{a}_vs_{b}", s, a, b, text) for s in SETTINGS for a, b, text in (
        ("clip_low", "clip_high", "clip-low only keeps more entropy than clip-high only"),
        ("clip_low", "no_clip", "clip-low only keeps more entropy than no clipping"),
        ("no_clip", "clip_high", "clip-high only keeps less entropy than no clipping"))]


def min_effect(n_arms: int) -> float:
    """Smallest entropy difference of interest over training: 1% of the largest possible entropy log|A| (nats)."""
    return 0.01 * math.log(n_arms)


class CoinFlipRewards:
    """Per-sample random rewards: a fresh Bernoulli(1/2) draw for every sampled arm, independent of the action.

    The draw of sample j at step t of a run depends only on (seed, t, the run's position among the distinct
    ``row_seeds``, j): runs with the same row seed (the arms of one paired comparison) see the same coin flips
    (common random numbers), and calling the object twice for the same step gives the same rewards.

    Args:
        row_seeds: (R,) seed of every run (row).
        seed: base seed of the coin flips.
    """

    def __init__(self, row_seeds: Sequence[int], seed: int) -> None:
        index: dict[int, int] = {}
        self.row = torch.tensor([index.setdefault(int(s), len(index)) for s in row_seeds])
        self.n_seeds, self.seed = len(index), int(seed)

    def __call__(self, step: int, actions: Tensor) -> Tensor:
        """(R, G) float rewards in {0, 1} for the (R, G) sampled ``actions`` of ``step`` (only their shape is used)."""
        if actions.dim() != 2 or actions.shape[0] != len(self.row):
            raise ValueError(f"actions must have shape ({len(self.row)}, G), got {tuple(actions.shape)}")
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(step))
        u = torch.rand(self.n_seeds, actions.shape[1], generator=gen)  # (distinct seeds, G)
        return (u[self.row] < 0.5).float()


def _arms(eps: float) -> dict[str, EntropyConfig]:
    return {"no_clip": EntropyConfig(method="none", eps_low=1.0, eps_high=NO_CLIP_HIGH),
            "clip_low": EntropyConfig(method="none", eps_low=eps, eps_high=NO_CLIP_HIGH),
            "clip_high": EntropyConfig(method="none", eps_low=1.0, eps_high=eps),
            "both": EntropyConfig(method="none", eps_low=eps, eps_high=eps)}


def _train_setting(cfg, setting: str, show_progress: bool) -> dict:
    """PPO runs of every arm in one setting; per-arm entropy curves and per-seed summaries."""
    arms, n, s0 = _arms(cfg.clip_eps), cfg.clip_seeds, cfg.clip_seed0
    seeds = [s0 + i for i in range(n)] * len(arms)
    ecfgs = [e for e in arms.values() for _ in range(n)]
    tcfg = ToyTrainConfig(n_arms=cfg.clip_arms, m_optimal=1, estimator="grpo", steps=cfg.clip_steps, group_size=16,
                       lr=cfg.clip_lr, ppo_epochs=cfg.clip_epochs, init="gaussian", init_scale=cfg.clip_init_scale,
                       seed=s0, track_clamped=False, common_random_numbers=True)
    if setting == "coin_flip":
        rewards = torch.full((len(seeds), cfg.clip_arms), 0.5)  # every arm's expected reward
        sample = CoinFlipRewards(seeds, seed=s0 + 7)
    else:
        table = (torch.rand(n, cfg.clip_arms, generator=torch.Generator().manual_seed(s0 + 1)) < 0.5).float()
        rewards, sample = table.repeat(len(arms), 1), None
    with progress(cfg.clip_steps, f"dynamics (clipping, {setting})", disable=not show_progress) as bar:
        run = train_bandit(tcfg, rewards=rewards, row_seeds=seeds, entropy_cfgs=ecfgs, progress=bar.update,
                           sample_rewards=sample)
    ent = run.entropy.numpy()  # (steps + 1, arms * n)
    out = {"label": SETTINGS[setting], "seeds": [s0, s0 + n - 1], "steps": list(range(cfg.clip_steps + 1)),
           "initial_entropy_mean": float(ent[0, :n].mean()),
           "reward_mean": float(np.mean([m["reward_mean"] for m in run.metrics])), "arms": {}}
    for k, name in enumerate(arms):
        rows = slice(k * n, (k + 1) * n)
        m, s = mean_std(ent[-1, rows])
        out["arms"][name] = {"final_entropy_mean": m, "final_entropy_std": s, "final_per_seed": ent[-1, rows].tolist(),
                             "mean_per_seed": ent[:, rows].mean(0).tolist(),
                             "entropy_curve_mean": ent[:, rows].mean(1).tolist()}
    return out


def mechanism(cfg) -> dict:
    """Per update: first-order entropy effect of the updates that clip-low / clip-high remove, second PPO epoch.

    Per state: G tokens from pi_old, GRPO advantages of coin-flip rewards, one unclipped epoch (so that ratios
    leave 1), then the second epoch's update split by toy.dynamics.ppo_token_step. Removing an update dz_removed
    changes the entropy change by -(-Cov(log pi, dz_removed)) to first order. The states are drawn from
    ``clip_seed0`` (fresh states, not those of the earlier study, which drew them from ``seed``).
    """
    gen = torch.Generator().manual_seed(cfg.clip_seed0)
    n_tok, eps = 16, cfg.clip_eps
    low_eff, high_eff = [], []
    for _ in range(cfg.n_states // 4):
        z_old = cfg.clip_init_scale * torch.randn(cfg.n_arms, generator=gen, dtype=torch.float64)
        tok = torch.multinomial(torch.softmax(z_old, -1), n_tok, replacement=True, generator=gen)
        r = (torch.rand(n_tok, generator=gen) < 0.5).double()
        adv = (r - r.mean()) / (r.std() + 1e-6)
        z1 = z_old + ppo_token_step(z_old, z_old, tok, adv, cfg.clip_lr, 1.0, NO_CLIP_HIGH)["unclipped"]
        parts = ppo_token_step(z1, z_old, tok, adv, cfg.clip_lr, eps, eps)
        if parts["clip_low"].any():
            low_eff.append(-float(predicted_entropy_change(z1, parts["removed_low"])))
        if parts["clip_high"].any():
            high_eff.append(-float(predicted_entropy_change(z1, parts["removed_high"])))
    return {"clip_low_effect": low_eff, "clip_high_effect": high_eff,
            "clip_low_mean": mean_std(low_eff)[0] if low_eff else None,
            "clip_high_mean": mean_std(high_eff)[0] if high_eff else None}


def simulate_clipping(cfg, show_progress: bool = True) -> dict:
    """Both settings of the training study; the ``clipping`` block of dynamics.json."""
    return {"min_effect": min_effect(cfg.clip_arms),
            **{s: _train_setting(cfg, s, show_progress) for s in SETTINGS}}


def _p(p: float) -> str:
    """A p-value for the text; 0.0 (below the smallest float) is shown as < 1e-300."""
    return "< 1e-300" if p == 0 else f"= {p:.2g}"


def claim_status(test: dict, delta: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """Verdict of "the effect exceeds delta" from a t test of the effect in the claimed direction (module rule)."""
    if p_adjusted < alpha and test["mean"] > delta:
        return "held"
    if test["ci_high"] < delta:
        return "did not hold"
    return "inconclusive"


def _claim_tests(mech: dict, clip: dict) -> dict:
    """{claim key: (t test of the effect in the claimed direction, delta)}; None where there is too little data."""
    delta = clip["min_effect"]
    out = {}
    for key, setting, a, b, _ in CLAIMS:
        if setting is None:
            x = mech["clip_low_effect"] if key == "per_update_low" else [-v for v in mech["clip_high_effect"]]
            out[key] = (t_test(x), 0.0) if len(x) >= 2 else None
        else:
            arms = clip[setting]["arms"]
            out[key] = (t_test(np.subtract(arms[a]["mean_per_seed"], arms[b]["mean_per_seed"])), delta)
    return out


def _per_update_text(key: str, t: dict, p_adj: float, eps: float) -> str:
    """The sentence of a per-update claim, in the sign of the measured effect (t is of the claimed direction)."""
    sign = 1 if key == "per_update_low" else -1
    lo, hi = sorted((sign * t["ci_low"], sign * t["ci_high"]))
    return (f"Per update (first order, second PPO epoch, eps={eps:g}), removing the "
            f"{'clip-low' if sign > 0 else 'clip-high'} updates changes the entropy change by {sign * t['mean']:+.2e} "
            f"nats on average over {t['n']} states (95% CI [{lo:+.2e}, {hi:+.2e}], t test p {_p(t['p'])}, "
            f"Holm-adjusted p {_p(p_adj)}; claimed sign {'+' if sign > 0 else '-'}).")


def _training_text(s: dict, a: str, b: str, t: dict, p_adj: float, delta: float, eps: float, epochs: int) -> str:
    """The sentence of a training claim a - b > delta in setting block ``s``."""
    arms, label = s["arms"], s["label"][0].upper() + s["label"][1:]
    return (f"{label}; {len(s['steps']) - 1} PPO steps, {epochs} epochs, eps={eps:g}, {t['n']} paired seeds "
            f"{s['seeds'][0]}..{s['seeds'][1]}: entropy averaged over training, {a} minus {b} = {t['mean']:+.4f} nats "
            f"(95% CI [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}], paired t p {_p(t['p'])}, Holm-adjusted p "
            f"{_p(p_adj)}; smallest effect of interest {delta:.3f}); final entropy {a} "
            f"{arms[a]['final_entropy_mean']:.3f} vs {b} {arms[b]['final_entropy_mean']:.3f} nats (start "
            f"{s['initial_entropy_mean']:.3f}).")


def judge_clipping(mech: dict, clip: dict, eps: float, epochs: int) -> list[dict]:
    """Verdicts of the clip claims, Holm-adjusted as one family; every claim names its setting."""
    tests = _claim_tests(mech, clip)
    keys = [k for k, v in tests.items() if v is not None]
    adjusted = dict(zip(keys, holm([tests[k][0]["p"] for k in keys])))
    out = []
    for key, setting, a, b, claim in CLAIMS:
        label = "per update" if setting is None else f"{setting.replace('_', '-')} rewards, over training"
        if tests[key] is None:
            out.append(verdict(f"[{label}] {claim}", "inconclusive", f"Too few states with clipped tokens "
                               f"({len(mech['clip_low_effect'])} / {len(mech['clip_high_effect'])}) to test."))
            continue
        t, delta = tests[key]
        text = (_per_update_text(key, t, adjusted[key], eps) if setting is None else
                _training_text(clip[setting], a, b, t, adjusted[key], delta, eps, epochs))
        out.append(verdict(f"[{label}] {claim}", claim_status(t, delta, adjusted[key]), text))
    return out


def plot_setting(ax, clip: dict, setting: str, eps: float) -> None:
    """Mean entropy curve of every arm in one setting (one colour per arm across panels)."""
    s = clip[setting]
    for name, info in s["arms"].items():
        ax.plot(s["steps"], info["entropy_curve_mean"], color=ARM_COLORS[name], label=name)
    ax.set(xlabel="PPO step", ylabel="entropy (nats), mean over seeds",
           title=f"over training: {setting.replace('_', '-')} rewards, eps={eps:g}")
    ax.legend(fontsize=8)
