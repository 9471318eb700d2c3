"""The update's hidden-state path takes the fused loss (aent.chunked_policy_loss) for per-token methods.

Reference: the same update with `optim.chunked_loss=false` (materialised logits, the same micro-batches: top-entropy
masking selects per micro-batch); here the methods and aggregations tests/llm/test_chunked_loss.py does not cover,
and a count of which chunked function each micro-batch went through.
"""

from __future__ import annotations

import pytest
import torch

import aent.regularizer as reg
from llm.update import ppo_update
from tests.llm.test_chunked_loss import _run, rollout_batch  # noqa: F401  (fixture)


@pytest.mark.parametrize("entropy,fused", [
    (["entropy.method=pos_reweight", "entropy.pos_weight=0.3", "entropy.loss_agg=seq-mean-token-sum-norm",
      "entropy.norm_const=16"], True),
    (["entropy.method=clamped_bonus", "entropy.ent_coef=0.05", "entropy.entropy_agg=loss_agg",
      "entropy.loss_agg=seq-mean-token-sum"], True),
    (["entropy.method=top_entropy", "entropy.top_entropy_rho=0.5"], False),
])
def test_update_takes_the_fused_loss_for_per_token_methods(monkeypatch, rollout_batch, entropy, fused):  # noqa: F811
    model, batch, adv = rollout_batch
    model.zero_grad(set_to_none=True)
    run, captured = _run(model, [*entropy, "optim.micro_batch_size=3", "optim.chunked_loss=false"])
    ref_metrics = ppo_update(run, 1, batch, adv)
    ref = captured[0]
    model.zero_grad(set_to_none=True)
    calls = {"chunked_policy_loss": 0, "chunked_policy_terms": 0}
    for name in calls:
        real = getattr(reg, name)

        def counted(*a, _real=real, _name=name, **kw):
            calls[_name] += 1
            return _real(*a, **kw)
        monkeypatch.setattr(reg, name, counted)
    run, captured = _run(model, [*entropy, "optim.micro_batch_size=3", "optim.chunked_loss=true"])
    metrics = ppo_update(run, 1, batch, adv)
    model.zero_grad(set_to_none=True)
    micro = -(-8 // 3)  # 4 prompts x 2 samples in micro-batches of 3
    assert calls == ({"chunked_policy_loss": micro, "chunked_policy_terms": 0} if fused
                     else {"chunked_policy_loss": 0, "chunked_policy_terms": micro})
    for g, r in zip(captured[0], ref):
        assert torch.allclose(g, r, atol=1e-6, rtol=1e-4)
    assert metrics.keys() == ref_metrics.keys() and metrics["updates"] == 1
    for key in ("policy_loss", "entropy_loss", "entropy", "clamped_entropy", "clip_frac", "approx_kl"):
        assert metrics[key] == pytest.approx(ref_metrics[key], rel=1e-5, abs=1e-7), key
