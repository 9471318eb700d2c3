"""aent.chunked_policy_loss (gradient formed in forward) against the materialised path and float64 definitions.

References: autograd through logits built explicitly (``hidden @ weight.T``, then ``aent.token_logprobs`` /
``aent.entropy`` / ``aent.clamped_entropy``: the reference path); autograd through
``aent.chunked_policy_terms`` (the unfused chunked path); a float64 direct formula (log_softmax, and the clamped
entropy over a stable-argsort kept set); ``torch.autograd.gradcheck`` in float64; hypothesis for the bounds and for
invariance to the chunk size. The per-token loss is PPO-clip plus weighted entropies, so the gradients to the
terms differ per token and depend on logp (clipped tokens get none).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import aent
from aent import chunked_policy_loss, chunked_policy_terms
from tests.aent.test_chunked import _direct64, _materialised


def _inputs(n, d, vocab, dtype=torch.float32, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, d, generator=g, dtype=torch.float64).mul(scale).to(dtype).requires_grad_()
    weight = torch.randn(vocab, d, generator=g, dtype=torch.float64).mul(0.6).to(dtype).requires_grad_()
    tokens = torch.randint(0, vocab, (n,), generator=g)
    side = {"old": -3.0 + torch.randn(n, generator=g, dtype=torch.float64),  # old log-probs, some ratios clipped
            "adv": torch.randn(n, generator=g, dtype=torch.float64),
            "w": torch.rand(n, generator=g, dtype=torch.float64),  # aggregation weights
            "u": torch.randn(2, n, generator=g, dtype=torch.float64)}  # entropy coefficients
    return hidden, weight, tokens, side


def _token_loss(side):
    """PPO-clip (eps 0.2) times w, plus u1 H + u2 H~: a per-token loss; rows index the side inputs."""
    def token_loss(logp, ent, cent, rows):
        old, adv = side["old"][rows].to(logp.dtype), side["adv"][rows].to(logp.dtype)
        ratio = torch.exp(logp - old)
        ppo = torch.maximum(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))
        u = side["u"][:, rows].to(logp.dtype)
        return side["w"][rows].to(logp.dtype) * ppo + u[0] * ent + u[1] * cent
    return token_loss


def _sum_loss(terms, side):
    return _token_loss(side)(*terms, slice(0, terms[0].shape[0])).sum()


def _reference(fn, hidden, weight, tokens, side, temperature, clamp):
    terms = fn(hidden, weight, tokens, temperature, clamp)
    loss = _sum_loss(terms, side)
    gh, gw = torch.autograd.grad(loss, (hidden, weight))
    return loss.detach(), [t.detach() for t in terms], gh, gw


def _fused(hidden, weight, tokens, side, temperature, clamp, chunk):
    out = chunked_policy_loss(hidden, weight, tokens, _token_loss(side), temperature=temperature, clamp=clamp,
                              chunk_size=chunk)
    gh, gw = torch.autograd.grad(out.loss, (hidden, weight))
    return out.loss.detach(), list(out.terms), gh, gw


def _rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


# ------------------------------------------------------------------------------------------------ agreement
@pytest.mark.parametrize("n,chunk", [(1, None), (37, 5), (64, 64), (50, 7)])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("clamp", [0.0, 0.33])
def test_fp32_matches_materialised_and_chunked_terms(n, chunk, temperature, clamp):
    hidden, weight, tokens, side = _inputs(n, 16, 300)
    fl, ft, fh, fw = _fused(hidden, weight, tokens, side, temperature, clamp, chunk)
    for fn in (_materialised, lambda *a: tuple(chunked_policy_terms(*a[:3], temperature=a[3], clamp=a[4]))):
        rl, rt, rh, rw = _reference(fn, hidden, weight, tokens, side, temperature, clamp)
        assert fl.item() == pytest.approx(rl.item(), rel=1e-5, abs=1e-6)
        for a, b in zip(ft, rt):
            assert _rel(a, b) < 1e-6
        assert _rel(fh, rh) < 1e-5 and _rel(fw, rw) < 1e-5


@pytest.mark.parametrize("clamp", [0.0, 0.25, 0.5])
def test_fp32_matches_float64_definition_with_ties(clamp):
    """Tied logits (duplicated rows of W) at the clamp's threshold: agreement to fp32 rounding."""
    hidden, weight, tokens, side = _inputs(24, 8, 40, seed=3)
    with torch.no_grad():
        weight[20:] = weight[:20]  # every logit appears twice
    rl, rt, rh, rw = _reference(_direct64, hidden, weight, tokens, side, 0.9, clamp)
    fl, ft, fh, fw = _fused(hidden, weight, tokens, side, 0.9, clamp, 5)
    assert fl.item() == pytest.approx(rl.item(), rel=1e-5, abs=1e-6)
    for a, b in zip(ft, rt):
        assert (a.double() - b).abs().max() < 1e-5
    assert _rel(fh, rh) < 1e-5 and _rel(fw, rw) < 1e-5


@pytest.mark.parametrize("temperature,clamp", [(1.0, 0.0), (0.6, 0.3)])
def test_gradcheck_float64(temperature, clamp):
    hidden, weight, tokens, side = _inputs(7, 4, 11, dtype=torch.float64, seed=2)
    fn = _token_loss(side)
    assert torch.autograd.gradcheck(
        lambda h, w: chunked_policy_loss(h, w, tokens, fn, temperature=temperature, clamp=clamp, chunk_size=3).loss,
        (hidden, weight))


def test_bf16_within_materialised_bf16_error():
    """bf16 inputs: the fused loss and gradients err against fp32 no more than the materialised bf16 path."""
    h32, w32, tokens, side = _inputs(48, 32, 500, seed=4)
    ref = _reference(_materialised, h32, w32, tokens, side, 1.0, 0.33)
    h16, w16 = (x.detach().bfloat16().requires_grad_() for x in (h32, w32))
    mat = _reference(_materialised, h16, w16, tokens, side, 1.0, 0.33)
    fus = _fused(h16, w16, tokens, side, 1.0, 0.33, 8)
    assert fus[2].dtype == torch.bfloat16 and fus[3].dtype == torch.bfloat16
    for got, theirs, want in zip(fus[1], mat[1], ref[1]):  # the terms: the same bf16 logits, the same rounding
        assert _rel(got, want) <= _rel(theirs, want) * (1 + 1e-4) + 1e-7
    for i in (2, 3):  # gradients: summed in fp32 before one rounding, autograd sums bf16 tensors
        assert _rel(fus[i], ref[i]) <= _rel(mat[i], ref[i]) * 1.05
    assert abs(fus[0].item() - ref[0].item()) <= abs(mat[0].item() - ref[0].item()) + 1e-2 * abs(ref[0].item())


def test_fp32_head_with_bf16_hidden_multiplies_in_fp32():
    h32, w32, tokens, side = _inputs(20, 16, 200, seed=6)
    hidden = h32.detach().bfloat16().requires_grad_()
    rl, _, rh, rw = _reference(_materialised, hidden.float(), w32, tokens, side, 1.0, 0.3)
    fl, _, fh, fw = _fused(hidden, w32, tokens, side, 1.0, 0.3, 6)
    assert fh.dtype == torch.bfloat16 and fw.dtype == torch.float32
    assert fl.item() == pytest.approx(rl.item(), rel=1e-5, abs=1e-6)
    assert _rel(fw, rw) < 1e-5 and _rel(fh, rh) < 1e-2  # dL/dh rounded once to bf16


def test_autocast_multiplies_in_bf16_as_the_materialised_path():
    """Under CPU autocast both paths multiply in bf16: same terms and loss, gradients within bf16 rounding."""
    hidden, weight, tokens, side = _inputs(16, 16, 127, seed=12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rl, rt, rh, rw = _reference(_materialised, hidden, weight, tokens, side, 1.0, 0.3)
        fl, ft, fh, fw = _fused(hidden, weight, tokens, side, 1.0, 0.3, 5)
    assert fh.dtype == torch.float32 and fw.dtype == torch.float32
    for got, want in zip(ft, rt):
        torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-5)
    assert fl.item() == pytest.approx(rl.item(), rel=1e-5, abs=1e-5)
    assert _rel(fh, rh) < 1e-2 and _rel(fw, rw) < 1e-2


def test_upstream_gradient_scales_and_frozen_weight():
    hidden, weight, tokens, side = _inputs(30, 8, 90, seed=7)
    _, _, rh, rw = _reference(_materialised, hidden, weight, tokens, side, 1.0, 0.2)
    out = chunked_policy_loss(hidden, weight, tokens, _token_loss(side), clamp=0.2, chunk_size=4)
    gh, gw = torch.autograd.grad(-2.5 * out.loss + out.loss.detach(), (hidden, weight))
    assert _rel(gh, -2.5 * rh) < 1e-5 and _rel(gw, -2.5 * rw) < 1e-5
    frozen = weight.detach()
    out = chunked_policy_loss(hidden, frozen, tokens, _token_loss(side), clamp=0.2, chunk_size=4)
    (gh,) = torch.autograd.grad(out.loss, (hidden,))
    assert _rel(gh, rh) < 1e-5


def test_masked_tokens_equal_the_padded_materialised_loss():
    """Valid tokens only (hidden[mask]) give the masked materialised token-mean loss and its gradient."""
    b, t, d, vocab = 3, 5, 8, 70
    g = torch.Generator().manual_seed(8)
    hidden = torch.randn(b, t, d, generator=g).requires_grad_()
    weight = torch.randn(vocab, d, generator=g).mul(0.6).requires_grad_()
    actions = torch.randint(0, vocab, (b, t), generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    logits = hidden @ weight.t()  # (B, T, V)
    lp = aent.token_logprobs(logits, actions)
    cent = aent.clamped_entropy(logits, 0.3, mask)
    ref = (aent.masked_mean(-lp, mask.float()) - 0.1 * aent.masked_mean(cent, mask.float()))
    rh, rw = torch.autograd.grad(ref, (hidden, weight))
    count = float(mask.sum())
    out = chunked_policy_loss(hidden[mask], weight, actions[mask], lambda lp, h, hc, rows: (-lp - 0.1 * hc) / count,
                              clamp=0.3, chunk_size=2)
    gh, gw = torch.autograd.grad(out.loss, (hidden, weight))
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-6)
    assert _rel(gh, rh) < 1e-5 and _rel(gw, rw) < 1e-5 and bool((gh[~mask] == 0).all())


def test_unused_terms_and_constant_loss():
    hidden, weight, tokens, side = _inputs(25, 8, 60, seed=9)
    logits = hidden @ weight.t()
    ref = aent.token_logprobs(logits, tokens).sum()
    rh, rw = torch.autograd.grad(ref, (hidden, weight))
    out = chunked_policy_loss(hidden, weight, tokens, lambda lp, h, hc, rows: lp, clamp=0.4, chunk_size=6)
    gh, gw = torch.autograd.grad(out.loss, (hidden, weight))
    assert _rel(gh, rh) < 1e-5 and _rel(gw, rw) < 1e-5
    out = chunked_policy_loss(hidden, weight, tokens, lambda lp, h, hc, rows: torch.ones_like(lp), chunk_size=6)
    gh, gw = torch.autograd.grad(out.loss, (hidden, weight))
    assert out.loss.item() == 25.0 and not gh.any() and not gw.any()


def test_no_gradient_work_without_requires_grad():
    """No input needs a gradient, or gradients are off: one call on all tokens, nothing to differentiate."""
    hidden, weight, tokens, side = _inputs(30, 8, 90, seed=10)
    ref = _reference(_materialised, hidden, weight, tokens, side, 0.8, 0.3)[0]
    calls = []

    def spy(logp, ent, cent, rows):
        calls.append((rows, logp.requires_grad))
        return _token_loss(side)(logp, ent, cent, rows)

    for h, w, grad in ((hidden.detach(), weight.detach(), True), (hidden, weight, False)):
        with torch.set_grad_enabled(grad):
            out = chunked_policy_loss(h, w, tokens, spy, temperature=0.8, clamp=0.3, chunk_size=4)
        assert out.loss.grad_fn is None and not out.loss.requires_grad
        assert out.loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert calls == [(slice(0, 30), False)] * 2


def test_chunks_call_the_callback_with_their_rows():
    hidden, weight, tokens, side = _inputs(11, 4, 20, seed=11)
    seen = []
    chunked_policy_loss(hidden, weight, tokens, lambda lp, h, hc, rows: seen.append(rows) or lp, chunk_size=4)
    assert seen == [slice(0, 4), slice(4, 8), slice(8, 11)]
    out = chunked_policy_loss(hidden[:0], weight, tokens[:0], lambda lp, h, hc, rows: lp)
    assert out.loss.item() == 0.0 and out.terms.logp.shape == (0,)


# ---------------------------------------------------------------------------------------------- properties
@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 20), vocab=st.integers(2, 40), clamp=st.sampled_from([0.0, 0.1, 0.5, 0.9]),
       temperature=st.sampled_from([0.5, 1.0, 1.7]), chunk=st.integers(1, 25), scale=st.sampled_from([0.1, 3.0, 30.0]),
       seed=st.integers(0, 10_000))
def test_bounds_and_chunk_invariance(n, vocab, clamp, temperature, chunk, scale, seed):
    hidden, weight, tokens, side = _inputs(n, 6, vocab, seed=seed, scale=scale)
    fl, (lp, h, hc), gh, gw = _fused(hidden, weight, tokens, side, temperature, clamp, chunk)
    k = math.floor(clamp * vocab)
    assert bool((lp <= 1e-6).all()) and bool((h >= -1e-6).all()) and bool((h <= math.log(vocab) + 1e-5).all())
    assert bool((hc >= -1e-6).all()) and bool((hc <= math.log(vocab - k) + 1e-5).all())
    one = _fused(hidden, weight, tokens, side, temperature, clamp, n)
    assert fl.item() == pytest.approx(one[0].item(), rel=1e-5, abs=1e-5)
    assert torch.allclose(gh, one[2], rtol=1e-4, atol=1e-5) and torch.allclose(gw, one[3], rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("token_loss,match", [
    ("not callable", "token_loss must be a callable"),
    (lambda lp, h, hc, rows: lp.sum(), r"token_loss must return a float tensor of shape \(n,\)"),
    (lambda lp, h, hc, rows: lp[:-1], r"token_loss must return a float tensor of shape \(n,\)"),
])
def test_bad_callbacks_raise_clear_errors(token_loss, match):
    hidden, weight, tokens, _ = _inputs(6, 4, 10)
    for grad in (True, False):
        with torch.set_grad_enabled(grad), pytest.raises(ValueError, match=match):
            chunked_policy_loss(hidden, weight, tokens, token_loss, chunk_size=4)


def test_callback_needing_other_gradients_is_refused():
    hidden, weight, tokens, _ = _inputs(6, 4, 10)
    scale = torch.ones(6, requires_grad=True)
    with pytest.raises(ValueError, match="gradient to a tensor other than"):
        chunked_policy_loss(hidden, weight, tokens, lambda lp, h, hc, rows: scale[rows] * lp)
    out = chunked_policy_loss(hidden, weight, tokens, lambda lp, h, hc, rows: scale[rows].detach() * lp)
    assert out.loss.requires_grad


@pytest.mark.parametrize("kw,match", [
    ({"temperature": 0.0}, "temperature must be"), ({"clamp": 1.0}, "clamp"), ({"chunk_size": 0}, "chunk_size"),
])
def test_bad_inputs_raise_clear_errors(kw, match):
    hidden, weight, tokens, _ = _inputs(6, 4, 10)
    with pytest.raises(ValueError, match=match):
        chunked_policy_loss(hidden, weight, tokens, lambda lp, h, hc, rows: lp, **kw)
    with pytest.raises(ValueError, match="tokens must be ids"):
        chunked_policy_loss(hidden, weight, tokens + 10, lambda lp, h, hc, rows: lp)
