"""EntropyControl's fused hidden-state path (aent.chunked_policy_loss) against its materialised logits path.

References: ``EntropyControl.loss(logits=...)`` (the materialised reference path, autograd through the (B, T, V)
logits) for every per-token method and every aggregation mode; :func:`aent.aggregate_loss` (the direct formulas)
for :func:`aent.aggregate_weights`.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import aent
import aent.regularizer as reg
from tests.aent.test_chunked import policy_batch

_batch = policy_batch


def _rel(a, b):
    return float((a - b).double().norm() / b.double().norm())


PER_TOKEN = [name for name, cfg in sorted(aent.PRESETS.items()) if aent.METHOD_SPECS[cfg.method].per_token]


@pytest.mark.parametrize("name", PER_TOKEN)
@pytest.mark.parametrize("loss_agg", aent.LOSS_AGG_MODES)
@pytest.mark.parametrize("entropy_agg", ["token-mean", "loss_agg"])
def test_fused_path_equals_logits_path(monkeypatch, name, loss_agg, entropy_agg):
    """Every per-token preset, every aggregation: the loss, metrics and gradients of the two inputs agree, and the
    hidden-state path went through chunked_policy_loss."""
    cfg = dataclasses.replace(aent.PRESETS[name], loss_agg=loss_agg, entropy_agg=entropy_agg, chunk_size=5)
    spec = aent.METHOD_SPECS[cfg.method]
    if spec.entropy != "none":  # a bonus large enough that its gradient weighs (threshold's preset starts at 0)
        cfg = dataclasses.replace(cfg, ent_coef=cfg.coef_max if spec.boxed else 0.5)
    calls = []
    real = reg.chunked_policy_loss
    monkeypatch.setattr(reg, "chunked_policy_loss", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    hidden, weight, kw = _batch(temperature=0.8)
    ref = aent.EntropyControl(cfg).loss(logits=hidden @ weight.t(), **kw)
    rh, rw = torch.autograd.grad(ref.loss, (hidden, weight))
    out = aent.EntropyControl(cfg).loss(hidden=hidden, lm_head_weight=weight, **kw)
    gh, gw = torch.autograd.grad(out.loss, (hidden, weight))
    assert calls == [1]
    assert out.loss.item() == pytest.approx(ref.loss.item(), rel=1e-5, abs=1e-6)
    assert out.metrics.keys() == ref.metrics.keys()
    for key, v in ref.metrics.items():
        assert out.metrics[key] == pytest.approx(v, rel=1e-5, abs=1e-6), key
    assert _rel(gh, rh) < 1e-5 and _rel(gw, rw) < 1e-5


@pytest.mark.parametrize("method", [m for m, s in aent.METHOD_SPECS.items() if not s.per_token])
def test_methods_with_batch_statistics_stay_on_the_terms_path(monkeypatch, method):
    monkeypatch.setattr(reg, "chunked_policy_loss", lambda *a, **kw: pytest.fail("fused path used"))
    hidden, weight, kw = _batch()
    aent.EntropyControl(aent.EntropyConfig(method=method)).loss(hidden=hidden, lm_head_weight=weight, **kw)


def test_fused_path_without_gradient_gives_the_same_metrics():
    cfg = aent.PRESETS["aent"]
    hidden, weight, kw = _batch()
    ref = aent.EntropyControl(cfg).loss(logits=hidden @ weight.t(), **kw)
    with torch.no_grad():
        out = aent.EntropyControl(cfg).loss(hidden=hidden, lm_head_weight=weight, **kw)
    assert not out.loss.requires_grad
    assert out.loss.item() == pytest.approx(ref.loss.item(), rel=1e-5, abs=1e-6)
    for key, v in ref.metrics.items():
        assert out.metrics[key] == pytest.approx(v, rel=1e-5, abs=1e-6), key


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 5), t=st.integers(1, 7), mode=st.sampled_from(aent.LOSS_AGG_MODES),
       norm=st.sampled_from([None, 3.0]), seed=st.integers(0, 10_000))
def test_aggregate_weights_reproduce_aggregate_loss(b, t, mode, norm, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(b, t, generator=g) < 0.6  # rows without a valid token included
    loss = torch.randn(b, t, generator=g, dtype=torch.float64).float()
    w = aent.aggregate_weights(mask, mode, norm_const=norm)
    want = aent.aggregate_loss(loss, mask, mode, norm_const=norm)
    assert (w * loss).sum().item() == pytest.approx(want.item(), rel=1e-5, abs=1e-6)
    assert bool((w[~mask] == 0).all()) and bool((w >= 0).all())


def test_aggregate_weights_bad_inputs():
    with pytest.raises(ValueError, match="mode must be one of"):
        aent.aggregate_weights(torch.ones(2, 2), "token-sum")
    with pytest.raises(ValueError, match="mask must be"):
        aent.aggregate_weights(torch.ones(2))
    with pytest.raises(ValueError, match="norm_const"):
        aent.aggregate_weights(torch.ones(2, 2), "seq-mean-token-sum-norm", norm_const=0.0)
