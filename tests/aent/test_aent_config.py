"""EntropyConfig: every invalid setting raises one ValueError naming its field; presets and round trips."""

from __future__ import annotations

import json

import pytest

from aent import METHODS, PRESETS, EntropyConfig


@pytest.mark.parametrize(("changes", "field"), [
    ({"method": "bogus"}, "method"),
    ({"clamp_p": 1.0}, "clamp_p"),
    ({"clamp_p": -0.01}, "clamp_p"),
    ({"clamp_p": float("nan")}, "clamp_p"),
    ({"ent_coef": -1e-3}, "ent_coef"),
    ({"coef_lr": -1.0}, "coef_lr"),
    ({"coef_delta": -1.0}, "coef_delta"),
    ({"kl_cov_coef": -1.0}, "kl_cov_coef"),
    ({"pi_kp": -1.0}, "pi_kp"),
    ({"pi_ki": -1.0}, "pi_ki"),
    ({"band_low": 0.3, "band_high": 0.2}, "band_high"),
    ({"coef_min": 0.01, "coef_max": 0.001}, "coef_max"),
    ({"warmup": -1}, "warmup"),
    ({"warmup": 1.5}, "warmup"),
    ({"method": "aent", "ent_coef": 1.0}, "ent_coef"),
    ({"method": "sac", "ent_coef": 0.0, "coef_min": 0.0}, "ent_coef"),
    ({"eps_low": 0.0}, "eps_low"),
    ({"eps_high": 0.0}, "eps_high"),
    ({"dual_clip": 1.0}, "dual_clip"),
    ({"loss_agg": "sum"}, "loss_agg"),
    ({"norm_const": 0.0}, "norm_const"),
    ({"pos_weight": 1.5}, "pos_weight"),
    ({"pos_weight_mode": "bogus"}, "pos_weight_mode"),
    ({"method": "pos_reweight", "pos_weight_mode": "scheduled"}, "pos_weight_final"),
    ({"method": "pos_reweight", "pos_weight_mode": "scheduled", "pos_weight_final": 0.5}, "pos_weight_steps"),
    ({"pi_prob_threshold": 2.0}, "pi_prob_threshold"),
    ({"pi_integral_limit": 0.0}, "pi_integral_limit"),
    ({"clip_cov_ratio": 0.0}, "clip_cov_ratio"),
    ({"clip_cov_lb": 2.0, "clip_cov_ub": 1.0}, "clip_cov_ub"),
    ({"kl_cov_frac": 1.5}, "kl_cov_frac"),
    ({"top_entropy_rho": 0.0}, "top_entropy_rho"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"seed": -1}, "seed"),
])
def test_invalid_settings_name_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"EntropyConfig\.{field}\b"):
        EntropyConfig(**changes)


def test_k_ge_vocab_names_clamp_p():
    cfg = EntropyConfig(method="aent")
    assert cfg.check_vocab(100) == 33
    with pytest.raises(ValueError, match="clamp_p"):
        cfg.check_vocab(0)


def test_defaults_and_paper_settings():
    c = EntropyConfig.aent_paper()
    assert (c.method, c.ent_coef, c.clamp_p, c.band_low, c.band_high, c.coef_lr, c.warmup, c.coef_min,
            c.coef_max, c.eps_low, c.eps_high) == ("aent", 0.002, 0.33, 0.15, 0.24, 0.002, 30, 6e-4, 9e-3, 0.2, 0.2)
    r = EntropyConfig.aent_r1_distill()
    assert (r.ent_coef, r.clamp_p, r.band_low, r.band_high, r.coef_lr, r.coef_min, r.coef_max) == (
        3e-4, 0.25, 0.35, 0.62, 1e-4, 4e-5, 1e-3)
    assert EntropyConfig().method == "none"


# The settings each paper states (the AEnt presets are checked in test_defaults_and_paper_settings).
PAPER_PRESETS = {
    "clip_higher": {"method": "none", "eps_low": 0.2, "eps_high": 0.28},  # DAPO, arXiv 2503.14476
    "threshold": {"method": "threshold", "ent_coef": 0.0, "coef_delta": 1e-4, "coef_max": 0.005,
                  "target_entropy": 0.2},  # Skywork-OR1, arXiv 2505.22312, Sec. 3.2.4
    "entropic": {"method": "entropic", "pi_ki": 0.01, "pi_prob_threshold": 0.95},  # EntroPIC, arXiv 2511.15248
    "pos_reweight_entropy": {"method": "pos_reweight", "pos_weight": 0.0, "pos_weight_mode": "entropy",
                             "pos_weight_delta": 0.05},  # arXiv 2511.05993: entropy-guided, from w+ = 0
    "aent_r1_distill": {"method": "aent", "warmup": 156},  # arXiv 2509.03493, the R1-Distill run
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_hold_the_papers_settings_and_round_trip(name):
    cfg = EntropyConfig.preset(name)
    want = PAPER_PRESETS.get(name, {"method": name})  # the others are named after their method
    assert {k: getattr(cfg, k) for k in want} == want
    again = EntropyConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_every_method_has_a_preset():
    assert {c.method for c in PRESETS.values()} == set(METHODS)


def test_unknown_keys_and_presets_are_named():
    with pytest.raises(ValueError, match="bogus_key"):
        EntropyConfig.from_dict({"bogus_key": 1})
    with pytest.raises(ValueError, match="nope"):
        EntropyConfig.preset("nope")


def test_frozen_and_replace_validates():
    cfg = EntropyConfig()
    with pytest.raises(AttributeError):
        cfg.clamp_p = 0.5  # type: ignore[misc]
    assert cfg.replace(clamp_p=0.5).clamp_p == 0.5
    with pytest.raises(ValueError, match="clamp_p"):
        cfg.replace(clamp_p=2.0)
