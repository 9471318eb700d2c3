"""aent.integrations.verl against verl 0.9.0's own code (runs where verl 0.9.x imports; skipped otherwise).

verl is not in the project's environment (it pins transformers < 5.11 and pulls ray); docs/integrations/verl.md
shows how to make it importable beside the project for these tests. References: verl's own loss without an entropy
term plus lambda times the token mean of aent.clamped_entropy at the response positions found by index
arithmetic; aent's functions on the materialised logits; the AEnt band rule written out; the signatures recorded
in tests/integrations/conftest.py against the installed ones.
"""

from __future__ import annotations

import functools
import inspect
import types

import pytest
import torch

import aent
from aent.integrations import verl as av

AENT = aent.EntropyConfig(method="aent", ent_coef=0.01, clamp_p=0.33, band_low=1.0, band_high=1.5, coef_lr=0.002,
                          warmup=0, coef_min=1e-4, coef_max=0.05)


def _band(lam, h, cfg):
    drive = min(0.0, h - cfg.band_low) + max(0.0, h - cfg.band_high)
    return min(cfg.coef_max, max(cfg.coef_min, lam - cfg.coef_lr * drive))


def _installed():
    try:
        import verl.workers.engine_workers  # noqa: F401
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _installed(), reason="verl 0.9.x not installed (see docs/integrations/verl.md)")
class TestInstalledVerl:
    @pytest.fixture(autouse=True)
    def clean(self):
        yield
        av.uninstall()

    def test_recorded_signatures_are_the_installed_ones(self, verl_recorded, verl_recorded_fused):
        for (mod, attr), sig in {**verl_recorded, **verl_recorded_fused}.items():
            owner, name = av._resolve(mod, attr)
            fn = getattr(owner, name)
            fn = getattr(fn, "__wrapped__", fn) if attr.startswith("ActorRolloutRefWorker") else fn
            assert str(inspect.signature(fn)) == sig, (mod, attr)

    def _batch(self):
        from verl.utils import tensordict_utils as tu

        b, tp, tr, v = 3, 4, 5, 40
        g = torch.Generator().manual_seed(0)
        am = torch.ones(b, tp + tr, dtype=torch.long)
        am[0, :1] = 0  # a left-padded prompt
        am[1, tp + 3:] = 0  # a short response
        resp = am[:, tp:].clone()
        data = tu.get_tensordict(
            {"prompts": torch.randint(0, v, (b, tp), generator=g), "responses": torch.randint(0, v, (b, tr), generator=g),
             "attention_mask": am, "response_mask": resp, "old_log_probs": -torch.rand(b, tr, generator=g),
             "advantages": torch.randn(b, tr, generator=g)},
            non_tensor_dict={"dp_size": 1, "batch_num_tokens": int(resp.sum()), "global_batch_size": b})
        nnz = int(am.sum())
        logits = torch.randn(nnz, v, generator=g)  # one row per real token, as verl's remove-padding layout
        logp = torch.log_softmax(logits, -1)[:, 0]
        # Response token j of sequence i is scored at flat position end_i - len_i - 1 + j (verl's left shift).
        ends = am.sum(1).cumsum(0)
        idx = torch.zeros(b, tr, dtype=torch.long)
        for i in range(b):
            n = int(resp[i].sum())
            idx[i, :n] = ends[i] - n - 1 + torch.arange(n)
        return data, logits, logp, resp, idx

    def test_loss_with_patched_entropy_and_driven_coefficient(self):
        import verl.utils.torch_functional as F
        import verl.workers.engine_workers as ew
        from verl.workers.config import FSDPActorConfig

        original = ew.ppo_loss
        ctrl = av.install(AENT)
        data, logits, logp, resp, idx = self._batch()
        ent = F.entropy_from_logits(logits)  # what the engine now returns: clamped
        torch.testing.assert_close(ent, aent.clamped_entropy(logits, AENT.clamp_p))
        cfg = FSDPActorConfig(strategy="fsdp", entropy_coeff=0.0, rollout_n=1, ppo_mini_batch_size=3,
                              ppo_micro_batch_size_per_gpu=1)
        loss, _ = ew.ppo_loss(cfg, {"log_probs": logp, "entropy": ent}, data)
        pg, _ = original(cfg, {"log_probs": logp}, data)  # verl's own loss without an entropy term
        h = ent[idx] * resp
        want = float(pg) - AENT.ent_coef * float(h.sum() / resp.sum())
        assert float(loss) == pytest.approx(want, rel=1e-6)
        assert ctrl.ent_coef == AENT.ent_coef and av._state["window"] is not None

    def test_metrics_and_full_entropy_outside_the_update(self):
        """verl's own metrics stay; aent's come beside them, equal to hand computations at the response
        positions; without gradients (compute_log_prob, verl's actor/entropy) the entropy is verl's full one."""
        import verl.utils.torch_functional as F
        import verl.workers.engine_workers as ew
        from verl.workers.config import FSDPActorConfig

        original_entropy = F.entropy_from_logits
        av.install(AENT)
        data, logits, logp, resp, idx = self._batch()
        with torch.no_grad():
            torch.testing.assert_close(F.entropy_from_logits(logits), original_entropy(logits))
        ent = F.entropy_from_logits(logits)
        cfg = FSDPActorConfig(strategy="fsdp", entropy_coeff=0.0, rollout_n=1, ppo_mini_batch_size=3,
                              ppo_micro_batch_size_per_gpu=1)
        _, metrics = ew.ppo_loss(cfg, {"log_probs": logp, "entropy": ent}, data)
        assert {"actor/pg_loss", "actor/entropy_loss"} <= set(metrics)
        n = float(resp.sum())
        assert metrics["aent/entropy_coef"] == AENT.ent_coef
        assert metrics["aent/clamped_entropy"] == pytest.approx(
            float((aent.clamped_entropy(logits, AENT.clamp_p)[idx] * resp).sum()) / n, rel=1e-6)
        assert metrics["aent/entropy"] == pytest.approx(float((aent.entropy(logits)[idx] * resp).sum()) / n, rel=1e-6)

    def test_fused_forward_of_verl_gives_the_clamped_entropy(self):
        """verl's own fused forward (torch backend, dense_common.forward_with_torch_backend, as the FSDP engine
        patches it in with use_fused_kernels=true) on a tiny Qwen2: with gradients on, (log pi, clamped entropy)
        equal to the materialised logits' (positions shifted as verl rolls the labels); without, verl's entropy."""
        from transformers import Qwen2Config, Qwen2ForCausalLM
        from verl.models.transformers.dense_common import forward_with_torch_backend

        torch.manual_seed(0)
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=1, intermediate_size=32))
        ids = torch.randint(0, 64, (2, 6))
        av.install(AENT)
        out = forward_with_torch_backend(model, input_ids=ids, return_dict=True, temperature=0.7)
        logits = model(input_ids=ids).logits.detach()
        rolled = torch.roll(ids, shifts=-1, dims=-1)
        torch.testing.assert_close(out.log_probs, aent.token_logprobs(logits, rolled, 0.7), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.entropy, aent.clamped_entropy(logits, AENT.clamp_p, None, 0.7),
                                   rtol=1e-5, atol=1e-5)
        assert out.entropy.requires_grad
        with torch.no_grad():
            full = forward_with_torch_backend(model, input_ids=ids, return_dict=True, temperature=0.7).entropy
        torch.testing.assert_close(full, aent.entropy(logits, None, 0.7), rtol=1e-5, atol=1e-5)

    def test_band_rule_through_update_actor(self):
        import verl.utils.torch_functional as F
        import verl.workers.engine_workers as ew
        from verl.workers.config import FSDPActorConfig

        ctrl = av.install(AENT)
        data, logits, logp, resp, idx = self._batch()
        cfg = FSDPActorConfig(strategy="fsdp", entropy_coeff=0.0, rollout_n=1, ppo_mini_batch_size=3,
                              ppo_micro_batch_size_per_gpu=1)
        loss_fn = functools.partial(ew.ppo_loss, config=cfg)
        lam = AENT.ent_coef
        for scale in (0.5, 8.0, 4.0):  # logit scale sets the entropy: ~3.2 (above the band), ~0.6 (below), ~1.1 (in)
            ent = F.entropy_from_logits(logits * scale)

            class Actor:
                def train_mini_batch(self, data, ent=ent):
                    loss_fn(model_output={"log_probs": logp, "entropy": ent}, data=data)
                    return None

            worker = types.SimpleNamespace(actor=Actor(), enable_routing_replay=False)
            ew.ActorRolloutRefWorker.update_actor(worker, data)  # verl's decorators, then the patched step
            lam = _band(lam, float((ent[idx] * resp).sum() / resp.sum()), AENT)
            assert ctrl.ent_coef == pytest.approx(lam, rel=1e-6)  # fp32 token sums
        assert ctrl.global_step == 3

