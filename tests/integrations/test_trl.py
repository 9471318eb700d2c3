"""AEntGRPOTrainer (aent.integrations.trl) against an independent computation, on a tiny Qwen2 saved to disk.

References: the loss and gradients of ``aent.EntropyControl`` applied to logits from a plain full forward of the
same model (no ``logits_to_keep``, slicing by hand); the AEnt band rule written out from DESIGN.md, replayed on
the clamped entropies TRL logged; the JSON state in TRL's checkpoint folders.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from trl import GRPOConfig  # noqa: E402

from aent import EntropyConfig, EntropyControl  # noqa: E402
from aent.integrations.trl import STATE_FILE, AEntGRPOConfig, AEntGRPOTrainer, check_grpo_args  # noqa: E402
from aent.integrations.trl_config import FROM_TRL  # noqa: E402
from llm.tiny_checkpoint import write_tiny_qwen2  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return write_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2"))


def _dataset(n: int = 8) -> Dataset:
    return Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {i} plus 2?"}] for i in range(n)]})


def _reward(completions, **kw):
    return [float(len(c[0]["content"]) % 3) for c in completions]


def _fields(out: Path, **kw) -> dict:
    base = dict(output_dir=str(out), use_cpu=True, per_device_train_batch_size=4, num_generations=4,
                max_completion_length=8, max_steps=4, report_to="none", logging_steps=1, save_strategy="no",
                learning_rate=1e-2, bf16=False, seed=0, disable_tqdm=True, loss_type="bnpo")
    base.update(kw)
    return base


def _args(out: Path, **kw) -> GRPOConfig:
    return GRPOConfig(**_fields(out, **kw))


def aent_fields(cfg: EntropyConfig) -> dict:
    """The AEntGRPOConfig fields stating ``cfg`` in full (method and every constant; the clip as TRL's)."""
    d = {f"aent_{k}": v for k, v in cfg.to_dict().items() if k not in FROM_TRL and k != "method" and v is not None}
    return {**d, "aent_method": cfg.method, "epsilon": cfg.eps_low, "epsilon_high": cfg.eps_high}


def _trainer(ckpt, out, cfg, **kw) -> AEntGRPOTrainer:
    return AEntGRPOTrainer(model=str(ckpt), reward_funcs=_reward, args=AEntGRPOConfig(**_fields(out, **kw),
                                                                                      **aent_fields(cfg)),
                           train_dataset=_dataset())


def _batch(tr, seed: int = 0) -> dict:
    """A fixed off-policy batch: left-padded prompts, right-padded completions, perturbed old log-probs."""
    g = torch.Generator().manual_seed(seed)
    v = tr.model.config.vocab_size
    b, tp, tc = 4, 5, 7
    prompt_ids = torch.randint(3, v, (b, tp), generator=g)
    prompt_mask = torch.ones(b, tp, dtype=torch.long)
    prompt_mask[0, :2] = 0  # left padding
    completion_ids = torch.randint(3, v, (b, tc), generator=g)
    completion_mask = torch.ones(b, tc, dtype=torch.long)
    completion_mask[1, 4:] = 0  # right padding
    completion_mask[3, 6:] = 0
    with torch.no_grad():
        logits = _reference_logits(tr.model, prompt_ids, prompt_mask, completion_ids, completion_mask)
        old = torch.log_softmax(logits / tr.temperature, -1).gather(-1, completion_ids[..., None])[..., 0]
    old = old + 0.3 * torch.randn(b, tc, generator=g)  # ratios away from 1, some clipped
    return {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
            "completion_mask": completion_mask, "advantages": torch.tensor([1.0, -0.5, 0.25, -1.5]),
            "old_per_token_logps": old}


def _reference_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask):
    """Full forward of [prompt | completion]; the logit at position t scores token t + 1."""
    ids = torch.cat([prompt_ids, completion_ids], 1)
    mask = torch.cat([prompt_mask, completion_mask], 1)
    full = model(input_ids=ids, attention_mask=mask).logits
    tp, tc = prompt_ids.shape[1], completion_ids.shape[1]
    return full[:, tp - 1:tp + tc - 1]


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


METHODS = {
    "aent": EntropyConfig.aent_paper(),
    "entropy_bonus": EntropyConfig(method="entropy_bonus", ent_coef=0.05),
    "pos_reweight": EntropyConfig(method="pos_reweight", pos_weight=0.3),
    "kl_cov": EntropyConfig(method="kl_cov", kl_cov_frac=0.2),
    "clip_cov": EntropyConfig(method="clip_cov", clip_cov_ratio=0.3, clip_cov_lb=-10.0, clip_cov_ub=10.0),
    "top_entropy": EntropyConfig(method="top_entropy", top_entropy_rho=0.5),
    "entropic": EntropyConfig(method="entropic", pi_prob_threshold=0.0),
    "clip_higher": EntropyConfig(method="clamped_bonus", ent_coef=0.1, eps_high=0.28),
}


@pytest.mark.parametrize("accum", [1, 2])
def test_loss_and_gradients_equal_entropy_control(ckpt, tmp_path, accum):
    tr = _trainer(ckpt, tmp_path, EntropyConfig.aent_paper())
    model = tr.model
    model.train()
    tr.current_gradient_accumulation_steps = accum
    batch = _batch(tr)
    for name, cfg in METHODS.items():
        tr.args.epsilon_high = cfg.eps_high  # check_grpo_args ties TRL's clip to the config's
        tr.entropy_control = EntropyControl(check_grpo_args(tr.args, cfg))
        model.zero_grad()
        loss = tr.compute_loss(model, dict(batch))
        loss.backward()
        got = _grads(model)

        model.zero_grad()
        ref = EntropyControl(cfg)
        logits = _reference_logits(model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"],
                                   batch["completion_mask"])
        out = ref.loss(logits=logits, actions=batch["completion_ids"], old_logp=batch["old_per_token_logps"],
                       adv=batch["advantages"], mask=batch["completion_mask"], temperature=tr.temperature)
        (out.loss / accum).backward()
        want = _grads(model)

        assert float(loss) == pytest.approx(float(out.loss) / accum, rel=1e-5, abs=1e-7), name
        assert got.keys() == want.keys() and len(got) > 0
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-6, msg=f"{name}: grad of {k}")
        assert any(float(g.abs().max()) > 0 for g in want.values())


def _band_rule(lam, h, low, high, beta, lo, hi):
    drive = min(0.0, h - low) + max(0.0, h - high)
    return min(hi, max(lo, lam - beta * drive))


@pytest.mark.parametrize("band", [(4.0, 4.5), (7.0, 8.0)])  # the tiny model's clamped entropy is ~5.3 nats
def test_aent_coefficient_follows_band_rule(ckpt, tmp_path, band):
    cfg = EntropyConfig(method="aent", ent_coef=0.01, band_low=band[0], band_high=band[1], coef_lr=0.002, warmup=0,
                        coef_min=1e-4, coef_max=0.05)
    tr = _trainer(ckpt, tmp_path, cfg, max_steps=5)
    tr.train()
    logs = [h for h in tr.state.log_history if "entropy_coef" in h]
    assert len(logs) == 5
    lam = cfg.ent_coef
    for rec in logs:
        assert rec["entropy_coef"] == pytest.approx(lam, rel=1e-9)
        assert "clamped_entropy" in rec and math.isfinite(rec["clamped_entropy"])
        lam = _band_rule(lam, rec["clamped_entropy"], cfg.band_low, cfg.band_high, cfg.coef_lr, cfg.coef_min,
                         cfg.coef_max)
    assert tr.entropy_control.ent_coef == pytest.approx(lam, rel=1e-9)
    moved = tr.entropy_control.ent_coef - cfg.ent_coef
    assert moved < 0 if band[1] < 4.6 else moved > 0  # above the band lambda falls, below it rises


@pytest.mark.parametrize("loss_type", ["dapo", "bnpo"])
def test_controller_steps_once_per_optimizer_step_on_the_logged_entropy(ckpt, tmp_path, loss_type):
    """Accumulation 2: one controller step per optimizer step, driven by the logged clamped entropy (the token
    mean over both micro-batches), so the band rule replays exactly from the logs."""
    cfg = EntropyConfig(method="aent", ent_coef=0.01, band_low=4.0, band_high=4.5, coef_lr=0.002, warmup=0,
                        coef_min=1e-4, coef_max=0.05)
    tr = _trainer(ckpt, tmp_path, cfg, max_steps=3, per_device_train_batch_size=2, gradient_accumulation_steps=2,
                  loss_type=loss_type)
    tr.train()
    assert tr.entropy_control.global_step == 3
    assert tr.entropy_control.coef_ctrl.steps == 3
    logs = [h for h in tr.state.log_history if "entropy_coef" in h]
    lam = cfg.ent_coef
    for rec in logs:
        assert rec["entropy_coef"] == pytest.approx(lam, rel=1e-12)
        lam = _band_rule(lam, rec["clamped_entropy"], cfg.band_low, cfg.band_high, cfg.coef_lr, cfg.coef_min,
                         cfg.coef_max)
    assert tr.entropy_control.ent_coef == pytest.approx(lam, rel=1e-12)


def test_controller_state_saved_and_restored_with_checkpoints(ckpt, tmp_path):
    cfg = EntropyConfig(method="aent", ent_coef=0.01, band_low=1.0, band_high=2.0, coef_lr=0.002, warmup=0,
                        coef_min=1e-4, coef_max=0.05)
    tr = _trainer(ckpt, tmp_path, cfg, max_steps=3, save_strategy="steps", save_steps=2)
    tr.train()
    saved = json.loads((tmp_path / "checkpoint-2" / STATE_FILE).read_text())
    assert saved["global_step"] == 2
    step3 = [h for h in tr.state.log_history if h.get("step") == 3 and "entropy_coef" in h][0]
    assert saved["coef"]["coef"] == pytest.approx(step3["entropy_coef"], rel=1e-12)  # the value step 3 ran with

    tr2 = _trainer(ckpt, tmp_path / "again", cfg, max_steps=3)
    assert tr2.entropy_control.state_dict() != saved
    tr2.load_entropy_state(tmp_path / "checkpoint-2")
    assert tr2.entropy_control.state_dict() == saved
    tr3 = _trainer(ckpt, tmp_path, cfg, max_steps=3)
    tr3.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert tr3.entropy_control.global_step == 3


def test_unsupported_settings_fail_with_one_clear_message(ckpt, tmp_path):
    cfg = EntropyConfig.aent_paper()
    for kw, field in ((dict(beta=0.04), "beta"), (dict(loss_type="cispo"), "loss_type"),
                      (dict(top_entropy_quantile=0.2), "top_entropy_quantile"),
                      (dict(entropy_coef=0.01), "entropy_coef"), (dict(importance_sampling_level="sequence"),
                                                                  "importance_sampling_level")):
        with pytest.raises(ValueError, match=f"GRPOConfig.{field}"):
            _trainer(ckpt, tmp_path, cfg, **kw)
    # the deprecated entry point states clip and aggregation twice, so it checks that they agree
    for kw, field in ((dict(loss_type="grpo"), "loss_type"), (dict(epsilon_high=0.28), "epsilon")):
        with pytest.raises(ValueError, match=f"GRPOConfig.{field}"), pytest.warns(FutureWarning):
            AEntGRPOTrainer(model=str(ckpt), reward_funcs=_reward, args=_args(tmp_path, **kw),
                            train_dataset=_dataset(), entropy_config=cfg)
    assert check_grpo_args(_args(tmp_path, loss_type="dr_grpo"),
                           cfg.replace(loss_agg="seq-mean-token-sum-norm")).norm_const == 8.0


def test_aent_imports_without_trl():
    code = ("import sys; sys.modules['trl'] = None; import aent, aent.integrations\n"
            "try:\n    import aent.integrations.trl\nexcept ImportError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ERR aent.integrations.trl needs TRL" in out.stdout


def test_trains_lora_adapters_through_peft_config(ckpt, tmp_path):
    peft = pytest.importorskip("peft")
    args = AEntGRPOConfig(**_fields(tmp_path, max_steps=2), aent_preset="aent", aent_warmup=0)
    tr = AEntGRPOTrainer(model=str(ckpt), reward_funcs=_reward, args=args, train_dataset=_dataset(),
                         peft_config=peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    before = {n: p.detach().clone() for n, p in tr.model.named_parameters()}
    tr.train()
    after = dict(tr.model.named_parameters())
    moved = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert moved and all("lora_" in n for n in moved)
    assert all("clamped_entropy" in h for h in tr.state.log_history if "entropy_coef" in h)
    assert tr.entropy_control.global_step == 2
