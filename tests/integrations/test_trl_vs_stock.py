"""AEntGRPOTrainer's loss against stock TRL's ``GRPOTrainer`` on the same batch (the reference is TRL itself).

With the entropy control off (preset "none") the loss and every gradient must equal stock TRL's, for each PPO-clip
``loss_type`` at gradient accumulation 2 with micro-batches of different token counts, which is where TRL's "dapo"
(normalised by the tokens of the whole accumulation window) and a per-micro-batch token mean differ. With a fixed
full-entropy bonus (aent "entropy_bonus") the loss must equal stock TRL's with its own ``entropy_coef``. Also here:
``cast_lm_head_to_fp32`` and the extra model inputs of vision-language models.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from aent.integrations.trl import MODEL_INPUTS, AEntGRPOConfig, AEntGRPOTrainer  # noqa: E402
from llm.tiny_checkpoint import write_tiny_qwen2  # noqa: E402

ACCUM = 2


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return write_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2"))


def _reward(completions, **kw):
    return [0.0 for _ in completions]


def _common(out: Path, **kw) -> dict:
    base = dict(output_dir=str(out), use_cpu=True, per_device_train_batch_size=4, num_generations=4,
                gradient_accumulation_steps=ACCUM, max_completion_length=8, report_to="none", bf16=False,
                temperature=0.7, disable_tqdm=True, seed=0)
    base.update(kw)
    return base


def _data() -> Dataset:
    return Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {i} plus 2?"}] for i in range(8)]})


def _micro_batches(vocab: int, seed: int = 0) -> list[dict]:
    """Two micro-batches of one accumulation window, with 25 and 13 completion tokens; perturbed old log-probs."""
    g = torch.Generator().manual_seed(seed)
    out, lengths = [], ([7, 4, 7, 7], [2, 7, 1, 3])
    for lens in lengths:
        b, tp, tc = 4, 5, 7
        prompt_mask = torch.ones(b, tp, dtype=torch.long)
        prompt_mask[0, :2] = 0  # left padding
        completion_mask = (torch.arange(tc)[None] < torch.tensor(lens)[:, None]).long()
        out.append({"prompt_ids": torch.randint(3, vocab, (b, tp), generator=g), "prompt_mask": prompt_mask,
                    "completion_ids": torch.randint(3, vocab, (b, tc), generator=g),
                    "completion_mask": completion_mask, "advantages": torch.randn(b, generator=g),
                    "old_per_token_logps": -6.0 + 0.4 * torch.randn(b, tc, generator=g)})
    total = sum(int(m["completion_mask"].sum()) for m in out)
    for m in out:
        m["num_items_in_batch"] = torch.tensor(total)
    return out


def _window(trainer, batches) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Per-micro-batch losses and the accumulated gradients of one window, as Trainer.training_step runs it."""
    model = trainer.model
    model.train()
    trainer.current_gradient_accumulation_steps = ACCUM
    model.zero_grad()
    losses = []
    for i, inputs in enumerate(batches):  # gradients sync (the optimizer steps) after the last micro-batch only
        trainer.accelerator.gradient_state._set_sync_gradients(i == len(batches) - 1)
        loss = trainer.compute_loss(model, dict(inputs))
        loss.backward()
        losses.append(float(loss.detach()))
    return losses, {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _compare(got, want, rel=1e-6):
    (l_got, g_got), (l_want, g_want) = got, want
    assert l_got == pytest.approx(l_want, rel=rel, abs=1e-9)
    assert g_got.keys() == g_want.keys() and g_want
    for k in g_want:
        scale = float(g_want[k].abs().max())  # fp32 rounding of sums: an absolute floor relative to the largest entry
        torch.testing.assert_close(g_got[k], g_want[k], rtol=1e-5, atol=1e-6 * scale, msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.parametrize("loss_type", ["dapo", "bnpo", "grpo", "dr_grpo"])
def test_loss_and_gradients_equal_stock_trl_at_accumulation_2(ckpt, tmp_path, loss_type):
    stock = GRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                        args=GRPOConfig(**_common(tmp_path / "stock", loss_type=loss_type)))
    ours = AEntGRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                           args=AEntGRPOConfig(**_common(tmp_path / "aent", loss_type=loss_type),
                                               aent_preset="none"))
    batches = _micro_batches(stock.model.config.vocab_size)
    want, got = _window(stock, batches), _window(ours, batches)
    _compare(got, want)
    if loss_type == "dapo":  # the window sum, not a per-micro-batch mean: unequal micro-batches weigh by tokens
        tokens = [int(b["completion_mask"].sum()) for b in batches]
        assert tokens[0] != tokens[1]


@pytest.mark.parametrize("loss_type", ["dapo", "grpo"])
def test_entropy_bonus_equals_stock_trl_entropy_coef(ckpt, tmp_path, loss_type):
    stock = GRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                        args=GRPOConfig(**_common(tmp_path / "stock", loss_type=loss_type, entropy_coef=0.05)))
    ours = AEntGRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                           args=AEntGRPOConfig(**_common(tmp_path / "aent", loss_type=loss_type),
                                               aent_preset="entropy_bonus", aent_ent_coef=0.05))
    batches = _micro_batches(stock.model.config.vocab_size, seed=1)
    _compare(_window(ours, batches), _window(stock, batches))


def test_metric_names_follow_trl(ckpt, tmp_path):
    """TRL's own metrics keep their names (same values), aent's come beside them; no ent_coef / clip_frac."""
    stock = GRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                        args=GRPOConfig(**_common(tmp_path / "stock", entropy_coef=0.05)))
    ours = AEntGRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                           args=AEntGRPOConfig(**_common(tmp_path / "aent"), aent_preset="entropy_bonus",
                                               aent_ent_coef=0.05))
    batches = _micro_batches(stock.model.config.vocab_size, seed=2)
    _window(stock, batches), _window(ours, batches)
    want, got = stock._metrics["train"], ours._metrics["train"]
    for k in ("clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "clip_ratio/low_min",
              "clip_ratio/high_max", "policy_loss"):
        assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-7), k
    assert got["entropy_coef"] == want["entropy_coef"] == [0.05]
    assert any(v > 0 for v in want["clip_ratio/region_mean"])
    # TRL logs each micro-batch's token mean; aent the window's token mean (what a controller receives)
    n = [float(b["completion_mask"].sum()) for b in batches]
    assert got["entropy"] == [pytest.approx(sum(w * h for w, h in zip(n, want["entropy"])) / sum(n), rel=1e-5)]
    assert {"clamped_entropy", "sampled_entropy", "entropy_loss", "approx_kl"} <= set(got)
    assert not {"ent_coef", "clip_frac"} & set(got)


def test_cast_lm_head_to_fp32_is_honoured(ckpt, tmp_path):
    """A bf16 model with cast_lm_head_to_fp32: the loss sees the fp32 head's logits, equal to stock TRL's loss."""
    kw = dict(loss_type="bnpo", cast_lm_head_to_fp32=True, model_init_kwargs={"dtype": "bfloat16"})
    stock = GRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                        args=GRPOConfig(**_common(tmp_path / "stock", **kw)))
    ours = AEntGRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                           args=AEntGRPOConfig(**_common(tmp_path / "aent", **kw), aent_preset="none"))
    assert ours.model.lm_head.weight.dtype == torch.float32
    assert ours.model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    batches = _micro_batches(stock.model.config.vocab_size, seed=3)
    inputs = dict(batches[0])
    assert ours._completion_logits(ours.model, inputs).dtype == torch.float32
    (l_got, _), (l_want, _) = _window(ours, batches), _window(stock, batches)
    assert l_got == pytest.approx(l_want, rel=1e-5)


def test_extra_model_inputs_reach_the_forward(ckpt, tmp_path):
    """pixel_values, image_grid_thw, token_type_ids, ... in a micro-batch go to the model's forward as TRL gives them."""
    ours = AEntGRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                           args=AEntGRPOConfig(**_common(tmp_path), aent_preset="aent"))
    seen = {}

    def spy(module, args, kwargs):
        seen.update(kwargs)
        return args, {k: v for k, v in kwargs.items() if k not in MODEL_INPUTS}  # the text model ignores them

    handle = ours.model.register_forward_pre_hook(spy, with_kwargs=True)
    inputs = dict(_micro_batches(ours.model.config.vocab_size)[0])
    extra = {"pixel_values": torch.randn(8, 12), "image_grid_thw": torch.tensor([[1, 2, 4]]),
             "token_type_ids": torch.zeros(4, 12, dtype=torch.long)}
    try:
        ours.compute_loss(ours.model, {**inputs, **extra, "num_images": [1, 0, 0, 0]})
    finally:
        handle.remove()
    for k, v in extra.items():
        assert seen[k] is v, k
    assert "num_images" not in seen


def test_default_path_never_runs_the_lm_head_module(ckpt, tmp_path):
    """The tiny Qwen2's head is a plain bias-free Linear: the loss comes from hidden states and the head weight
    (aent.chunked_policy_terms), the lm_head module never runs, and it equals stock TRL (above) and the
    materialised path of the same trainer."""
    ours = AEntGRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                           args=AEntGRPOConfig(**_common(tmp_path), aent_preset="aent"))
    assert ours.aent_head == "chunked"
    calls = []
    handle = ours.model.lm_head.register_forward_hook(lambda *a: calls.append(1))
    batches = _micro_batches(ours.model.config.vocab_size, seed=4)
    try:
        chunked = _window(ours, batches)
    finally:
        handle.remove()
    assert calls == []
    ours.aent_head = "logits"
    materialised = _window(ours, batches)
    assert len(calls) == 0  # the hook was removed; the logits path does run the head
    _compare(chunked, materialised, rel=1e-5)


def test_heads_the_chunked_path_cannot_reproduce_keep_the_logits(ckpt, tmp_path):
    from aent.integrations._trl_head import head_unsupported

    ours = AEntGRPOTrainer(model=str(ckpt), reward_funcs=_reward, train_dataset=_data(),
                           args=AEntGRPOConfig(**_common(tmp_path), aent_preset="aent"))
    assert head_unsupported(ours.model) is None
    ours.model.config.final_logit_softcapping = 30.0
    assert "soft-caps" in head_unsupported(ours.model)
    with pytest.warns(UserWarning, match="materialises .* soft-caps"):
        assert ours._choose_head() == "logits"
