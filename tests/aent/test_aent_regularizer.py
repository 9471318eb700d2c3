"""EntropyControl: the assembled loss against a direct torch formula, every method runs, state round trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aent import PRESETS, EntropyConfig, EntropyControl, LossOutput

B, T, V = 3, 4, 10
METRIC_KEYS = {"policy_loss", "entropy_loss", "entropy", "clamped_entropy", "clip_frac", "approx_kl", "ent_coef",
               "pos_weight"}


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g) * 2
    actions = torch.randint(0, V, (B, T), generator=g)
    old_logp = torch.log_softmax(logits + 0.3 * torch.randn(B, T, V, generator=g), -1).gather(
        -1, actions[..., None]).squeeze(-1)
    adv = torch.tensor([1.0, -0.5, 0.25])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    return logits, actions, old_logp, adv, mask


def direct_loss(logits, actions, old_logp, adv, mask, coef, clamp_p, eps_low, eps_high, temperature=1.0):
    """Token-mean PPO-clip minus coef * token-mean (clamped) entropy, written directly in float64."""
    z = logits.double() / temperature
    logp = torch.log_softmax(z, -1).gather(-1, actions[..., None]).squeeze(-1)
    ratio = torch.exp(logp - old_logp.double())
    a = adv.double()[:, None]
    ppo = torch.maximum(-a * ratio, -a * ratio.clamp(1 - eps_low, 1 + eps_high))
    m = mask.double()
    policy = (ppo * m).sum() / m.sum()
    k = math.floor(clamp_p * V)
    removed = torch.zeros_like(z, dtype=torch.bool)
    if k:
        removed.scatter_(-1, torch.sort(z.detach(), dim=-1, stable=True).indices[..., :k], True)
    lp = torch.log_softmax(z.masked_fill(removed, -math.inf), -1)
    lp = torch.where(removed, torch.zeros_like(lp), lp)
    ent = -(lp.exp() * lp).sum(-1)
    return policy - coef * (ent * m).sum() / m.sum()


@pytest.mark.parametrize(("method", "clamp_p"), [("entropy_bonus", 0.0), ("clamped_bonus", 0.3), ("aent", 0.3),
                                                 ("none", 0.3)])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_loss_and_gradient_match_direct_formula(method, clamp_p, temperature):
    logits, actions, old_logp, adv, mask = batch()
    cfg = EntropyConfig(method=method, clamp_p=clamp_p if method != "entropy_bonus" else 0.33, ent_coef=0.05,
                        coef_min=0.0, coef_max=0.1, eps_low=0.2, eps_high=0.28)
    ctrl = EntropyControl(cfg)
    x = logits.clone().requires_grad_()
    out = ctrl.loss(logits=x, actions=actions, old_logp=old_logp, adv=adv, mask=mask, temperature=temperature)
    assert isinstance(out, LossOutput) and out.loss.dim() == 0
    out.loss.backward()
    coef = 0.0 if method == "none" else 0.05
    d = logits.double().clone().requires_grad_()
    want = direct_loss(d, actions, old_logp, adv, mask, coef, clamp_p, 0.2, 0.28, temperature)
    want.backward()
    assert out.loss.item() == pytest.approx(want.item(), abs=1e-5)
    torch.testing.assert_close(x.grad.double(), d.grad, atol=1e-5, rtol=1e-4)
    assert METRIC_KEYS <= set(out.metrics) and all(isinstance(v, float) for v in out.metrics.values())
    assert out.metrics["ent_coef"] == coef


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_with_finite_loss_and_gradient(name):
    logits, actions, old_logp, adv, mask = batch(1)
    ctrl = EntropyControl(PRESETS[name])
    x = logits.clone().requires_grad_()
    out = ctrl.loss(logits=x, actions=actions, old_logp=old_logp, adv=adv, mask=mask)
    out.loss.backward()
    assert math.isfinite(out.loss.item()) and torch.isfinite(x.grad).all()
    assert METRIC_KEYS <= set(out.metrics)
    assert all(math.isfinite(v) for v in out.metrics.values())
    nxt = ctrl.step_end({k: out.metrics[k] for k in ("entropy", "clamped_entropy", "sampled_entropy")})
    assert {"ent_coef", "pos_weight"} <= set(nxt)


def test_top_entropy_gradient_only_on_selected_tokens():
    logits, actions, old_logp, adv, mask = batch(2)
    ctrl = EntropyControl(EntropyConfig(method="top_entropy", top_entropy_rho=0.3))
    x = logits.clone().requires_grad_()
    out = ctrl.loss(logits=x, actions=actions, old_logp=old_logp, adv=torch.ones(B), mask=mask)
    out.loss.backward()
    has_grad = x.grad.abs().sum(-1) > 0
    n_valid = int(mask.sum())
    assert int(has_grad.sum()) == math.ceil(0.3 * n_valid)
    assert out.metrics["top_entropy_frac"] == pytest.approx(math.ceil(0.3 * n_valid) / n_valid)


def test_pos_reweight_scales_positive_tokens():
    logits, actions, old_logp, _, mask = batch(3)
    adv = torch.tensor([1.0, 1.0, 1.0])
    full = EntropyControl(EntropyConfig(method="pos_reweight", pos_weight=1.0))
    half = EntropyControl(EntropyConfig(method="pos_reweight", pos_weight=0.5))
    kw = {"logits": logits, "actions": actions, "old_logp": old_logp, "adv": adv, "mask": mask}
    assert half.loss(**kw).metrics["policy_loss"] == pytest.approx(0.5 * full.loss(**kw).metrics["policy_loss"])


def test_aent_step_end_uses_clamped_entropy_and_moves_lambda():
    cfg = EntropyConfig.aent_paper().replace(warmup=0)
    ctrl = EntropyControl(cfg)
    up = ctrl.step_end({"entropy": 5.0, "clamped_entropy": 0.05})["ent_coef"]  # below the band
    assert up == pytest.approx(0.002 + 0.002 * 0.10)
    down = ctrl.step_end({"entropy": 0.0, "clamped_entropy": 0.50})["ent_coef"]  # above the band
    assert down == pytest.approx(up - 0.002 * 0.26)
    with pytest.raises(ValueError, match="clamped_entropy"):
        ctrl.step_end({"entropy": 0.1})


@settings(max_examples=10)
@given(st.lists(st.floats(0.0, 2.0), min_size=2, max_size=8), st.sampled_from(["aent", "sac", "threshold",
                                                                               "entropic", "clip_cov"]))
def test_resume_equals_uninterrupted(hs, name):
    cfg = PRESETS[name].replace(clip_cov_lb=-10.0, clip_cov_ub=10.0, clip_cov_ratio=0.5) if name == "clip_cov" \
        else PRESETS[name]
    logits, actions, old_logp, adv, mask = batch(4)
    kw = {"logits": logits, "actions": actions, "old_logp": old_logp, "adv": adv, "mask": mask}

    def run(ctrl, seq):
        out = []
        for h in seq:
            out.append(ctrl.loss(**kw).metrics)
            out.append(ctrl.step_end({"entropy": h, "clamped_entropy": h, "sampled_entropy": h}))
        return out

    straight = run(EntropyControl(cfg), hs)
    first = EntropyControl(cfg)
    got = run(first, hs[:1])
    state = json.loads(json.dumps(first.state_dict()))
    second = EntropyControl(cfg)
    second.load_state_dict(state)
    got += run(second, hs[1:])
    assert got == straight


def test_errors_are_clear():
    with pytest.raises(ValueError, match="EntropyConfig"):
        EntropyControl({"method": "aent"})  # type: ignore[arg-type]
    ctrl = EntropyControl(EntropyConfig())
    logits, actions, old_logp, adv, mask = batch()
    with pytest.raises(ValueError, match="mask"):
        ctrl.loss(logits=logits, actions=actions, old_logp=old_logp, adv=adv, mask=mask[:, :2])
    with pytest.raises(ValueError, match="adv"):
        ctrl.loss(logits=logits, actions=actions, old_logp=old_logp, adv=torch.ones(5), mask=mask)
    with pytest.raises(ValueError, match="method"):
        EntropyControl(EntropyConfig(method="sac", ent_coef=0.002)).load_state_dict(ctrl.state_dict())


def test_metrics_entropy_is_token_mean_over_valid_tokens():
    logits, actions, old_logp, adv, mask = batch(5)
    out = EntropyControl(EntropyConfig()).loss(logits=logits, actions=actions, old_logp=old_logp, adv=adv,
                                                mask=mask)
    p = torch.softmax(logits.double(), -1)
    ent = -(p * p.log()).sum(-1)
    assert out.metrics["entropy"] == pytest.approx(ent[mask.bool()].mean().item(), abs=1e-5)
    assert np.isfinite(out.metrics["clamped_entropy"])


# ----------------------------------------------------------------------------------- paper-faithful details
def _ppo_token_mean(logp, old, adv, mask, eps=0.2):
    r = torch.exp(logp - old)
    a = adv[:, None]
    m = mask.double()
    return (torch.maximum(-a * r, -a * r.clamp(1 - eps, 1 + eps)) * m).sum() / m.sum()


def test_entropic_adds_alpha_times_unclipped_term_with_alpha_updated_per_micro_batch():
    """arXiv 2511.15248: loss = PPO-clip + alpha * (-(1/|S|) sum_S r |A|), S = {pi_theta > tau}; alpha from the
    micro-batch's entropy error and the integral of the *earlier* errors."""
    logits, actions, _, adv, mask = batch(6)
    logits = logits * 3  # make the argmax tokens likely; half of the tokens are argmax tokens
    actions = torch.where(torch.arange(T) % 2 == 0, logits.argmax(-1), actions)
    lp = torch.log_softmax(logits.double(), -1).gather(-1, actions[..., None]).squeeze(-1)
    old = lp.float() - 0.5  # ratios e^0.5 = 1.65: clipped in the PPO term, not in EntroPIC's
    tau, kp, ki, target = 0.3, 0.7, 0.5, 0.1
    cfg = EntropyConfig(method="entropic", pi_kp=kp, pi_ki=ki, target_entropy=target, pi_prob_threshold=tau)
    ctrl = EntropyControl(cfg)
    p = torch.softmax(logits.double(), -1)
    h = float((-(p * p.log()).sum(-1))[mask.bool()].mean())
    sel = mask.bool() & (lp.exp() > tau)
    assert 0 < int(sel.sum()) < int(mask.sum())
    term = -(torch.exp(lp - old.double()) * adv.double()[:, None].abs())[sel].sum() / sel.sum()
    integral = 0.0
    for _ in range(2):  # two micro-batches of one step
        alpha = max(-1.0, min(1.0, kp * (h - target) + ki * integral))
        integral += h - target
        x = logits.clone().requires_grad_()
        out = ctrl.loss(logits=x, actions=actions, old_logp=old, adv=adv, mask=mask)
        want = _ppo_token_mean(lp, old.double(), adv.double(), mask) + alpha * term
        assert float(out.loss.detach()) == pytest.approx(float(want), rel=1e-5)
        assert out.metrics["pi_alpha"] == pytest.approx(alpha, rel=1e-6)
    with torch.no_grad():  # a measurement does not move the controller
        ctrl.loss(logits=logits, actions=actions, old_logp=old, adv=adv, mask=mask)
    assert ctrl.weight_ctrl.integral == pytest.approx(integral)
    assert ctrl.step_end({"entropy": 5.0, "clamped_entropy": 5.0})["pi_alpha"] == pytest.approx(alpha, rel=1e-6)


def test_threshold_is_driven_by_minus_mean_old_logp_and_preset_is_skyworks():
    p = PRESETS["threshold"]
    assert (p.ent_coef, p.coef_delta, p.coef_min, p.coef_max, p.target_entropy) == (0.0, 1e-4, 0.0, 0.005, 0.2)
    logits, actions, old_logp, adv, mask = batch(7)
    out = EntropyControl(p).loss(logits=logits, actions=actions, old_logp=old_logp, adv=adv, mask=mask)
    assert out.metrics["sampled_entropy"] == pytest.approx(float(-old_logp[mask.bool()].mean()), rel=1e-6)
    ctrl = EntropyControl(p)
    # full entropy above the target, sampled estimate below: the sampled one decides (bonus on, coef + delta)
    assert ctrl.step_end({"entropy": 1.0, "clamped_entropy": 1.0, "sampled_entropy": 0.1})["ent_coef"] == \
        pytest.approx(1e-4)
    assert ctrl.step_end({"entropy": 0.1, "clamped_entropy": 0.1, "sampled_entropy": 1.0})["ent_coef"] == 0.0
    # no silent fallback to the policy's own entropy: the driving signal must be given
    with pytest.raises(ValueError, match="sampled_entropy"):
        ctrl.step_end({"entropy": 0.1, "clamped_entropy": 0.1})


@pytest.mark.parametrize("agg", ["token-mean", "loss_agg"])
def test_entropy_term_aggregation(agg):
    """entropy_agg: token mean over all valid tokens (TRL), or the policy loss's mode (verl, AEnt authors)."""
    logits, actions, old_logp, adv, mask = batch(8)
    cfg = EntropyConfig(method="entropy_bonus", ent_coef=0.1, loss_agg="seq-mean-token-mean", entropy_agg=agg)
    out = EntropyControl(cfg).loss(logits=logits, actions=actions, old_logp=old_logp, adv=adv, mask=mask)
    p = torch.softmax(logits.double(), -1)
    ent = -(p * p.log()).sum(-1)
    m = mask.double()
    want = (ent * m).sum() / m.sum() if agg == "token-mean" else ((ent * m).sum(1) / m.sum(1)).mean()
    assert out.metrics["entropy_loss"] == pytest.approx(-0.1 * float(want), rel=1e-5)
    assert EntropyConfig().entropy_agg == "token-mean"
    with pytest.raises(ValueError, match="entropy_agg"):
        EntropyConfig(entropy_agg="mean")


@pytest.mark.parametrize(("mode", "extra", "w0"), [("fixed", {}, 1.0), ("entropy", {}, 0.0),
                                                    ("stage", {"pos_weight_steps": 4}, 0.0),
                                                    ("epoch", {"pos_weight_steps": 4, "pos_weight_epochs": 2}, 0.0)])
def test_pos_reweight_starts_where_the_paper_does(mode, extra, w0):
    ctrl = EntropyControl(EntropyConfig(method="pos_reweight", pos_weight_mode=mode, **extra))
    assert ctrl.pos_weight == w0
    if mode in ("stage", "epoch"):
        ws = [ctrl.step_end({"entropy": 0.5, "clamped_entropy": 0.5})["pos_weight"] for _ in range(3)]
        assert ws == pytest.approx([0.0, 0.5, 1.0] if mode == "stage" else [0.0, 1.0, 1.0])
