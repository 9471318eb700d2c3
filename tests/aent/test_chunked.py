"""aent.chunked_policy_terms against the materialised path and against float64 definitions.

References: autograd through logits built explicitly (``hidden @ weight.T``) and the materialised
``aent.token_logprobs`` / ``aent.entropy`` / ``aent.clamped_entropy`` (the reference path the issue keeps);
a float64 direct formula (log_softmax, and the clamped entropy with the removed set from a stable argsort);
``torch.autograd.gradcheck`` in float64; hypothesis for the bounds and for invariance to the chunk size.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import aent
from aent import chunked_policy_terms
from aent.chunked import auto_chunk_size


def _inputs(n, d, vocab, dtype=torch.float32, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, d, generator=g, dtype=torch.float64).mul(scale).to(dtype).requires_grad_()
    weight = torch.randn(vocab, d, generator=g, dtype=torch.float64).mul(0.6).to(dtype).requires_grad_()
    tokens = torch.randint(0, vocab, (n,), generator=g)
    upstream = torch.randn(3, n, generator=g, dtype=torch.float64)  # random dL/d(logp, H, H~)
    return hidden, weight, tokens, upstream


def _loss(terms, upstream):
    return sum((u.to(t.dtype) * t).sum() for u, t in zip(upstream, terms))


def _materialised(hidden, weight, tokens, temperature, clamp):
    logits = hidden @ weight.t()  # (N, V)
    return (aent.token_logprobs(logits, tokens, temperature), aent.entropy(logits, temperature=temperature),
            aent.clamped_entropy(logits, clamp, temperature=temperature))


def _direct64(hidden, weight, tokens, temperature, clamp):
    """float64 definitions: log_softmax, and the clamped entropy over a stable-argsort kept set."""
    z = (hidden.double() @ weight.double().t()) / temperature
    lp = torch.log_softmax(z, -1)
    k = math.floor(clamp * z.shape[1])
    removed = torch.zeros_like(z, dtype=torch.bool)
    removed.scatter_(1, torch.sort(z.detach(), dim=-1, stable=True).indices[:, :k], True)
    lpk = torch.log_softmax(z.masked_fill(removed, -math.inf), -1)
    cent = -(lpk.exp() * torch.where(removed, 0.0, lpk)).sum(-1)
    return lp.gather(1, tokens[:, None]).squeeze(1), -(lp.exp() * lp).sum(-1), cent


def _grads(fn, hidden, weight, tokens, upstream, **kw):
    terms = fn(hidden, weight, tokens, **kw)
    gh, gw = torch.autograd.grad(_loss(terms, upstream), (hidden, weight))
    return [t.detach() for t in terms], gh, gw


def _rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp(min=1e-30))


# ------------------------------------------------------------------------------------------- fp32 agreement
@pytest.mark.parametrize("n,chunk", [(1, None), (1, 1), (23, None), (23, 1), (23, 5), (23, 23), (23, 64)])
@pytest.mark.parametrize("temperature,clamp", [(1.0, 0.0), (1.0, 0.33), (0.7, 0.25), (1.6, 0.0)])
def test_fp32_matches_materialised(n, chunk, temperature, clamp):
    hidden, weight, tokens, up = _inputs(n, 24, 301, scale=2.0)
    terms, gh, gw = _grads(lambda h, w, a: chunked_policy_terms(h, w, a, temperature=temperature, clamp=clamp,
                                                                chunk_size=chunk), hidden, weight, tokens, up)
    ref, rh, rw = _grads(lambda h, w, a: _materialised(h, w, a, temperature, clamp), hidden, weight, tokens, up)
    for got, want in zip(terms, ref):
        assert got.dtype == torch.float32 and got.shape == (n,)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert _rel(gh, rh) < 1e-5 and _rel(gw, rw) < 1e-5


def test_fp32_matches_float64_definition_and_selection_with_ties():
    hidden, weight, tokens, up = _inputs(9, 8, 64, scale=1.5)
    with torch.no_grad():  # duplicated vocabulary rows: tied logits at the clamp threshold
        weight[10:20] = weight[0]
    for temperature, clamp in [(1.0, 0.3), (0.8, 0.5), (1.0, 0.0)]:
        terms, gh, gw = _grads(lambda h, w, a, t=temperature, c=clamp: chunked_policy_terms(
            h, w, a, temperature=t, clamp=c, chunk_size=4), hidden, weight, tokens, up)
        ref, rh, rw = _grads(lambda h, w, a, t=temperature, c=clamp: _direct64(h, w, a, t, c), hidden, weight, tokens,
                             up)
        for got, want in zip(terms, ref):
            torch.testing.assert_close(got.double(), want, rtol=2e-5, atol=2e-5)
        assert _rel(gh, rh) < 1e-4 and _rel(gw, rw) < 1e-4


def test_only_used_outputs_cost_backward_and_grads_match():
    hidden, weight, tokens, up = _inputs(11, 8, 97)
    for used in ([0], [2], [0, 2], [1]):
        out = chunked_policy_terms(hidden, weight, tokens, clamp=0.3, chunk_size=3)
        gh, gw = torch.autograd.grad(sum(out[i].sum() for i in used), (hidden, weight))
        ref = _materialised(hidden, weight, tokens, 1.0, 0.3)
        rh, rw = torch.autograd.grad(sum(ref[i].sum() for i in used), (hidden, weight))
        assert _rel(gh, rh) < 1e-5 and _rel(gw, rw) < 1e-5


def test_frozen_weight_and_masked_tokens():
    hidden, weight, tokens, up = _inputs(12, 8, 50)
    weight = weight.detach()
    mask = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1], dtype=torch.bool)
    out = chunked_policy_terms(hidden[mask], weight, tokens[mask], clamp=0.2, chunk_size=2)
    (gh,) = torch.autograd.grad(out.clamped_entropy.sum() + out.logp.sum(), (hidden,))
    logits = hidden @ weight.t()
    ref = aent.clamped_entropy(logits, 0.2, mask.float()).sum() + (aent.token_logprobs(logits, tokens) * mask).sum()
    (rh,) = torch.autograd.grad(ref, (hidden,))
    assert _rel(gh, rh) < 1e-5
    assert float(gh[~mask].abs().max()) == 0.0


# --------------------------------------------------------------------------------------- bf16 / fp32 head
def test_bf16_within_materialised_bf16_error():
    h32, w32, tokens, up = _inputs(40, 64, 2003, scale=2.0)
    exact = _grads(lambda h, w, a: _direct64(h, w, a, 1.0, 0.3), h32, w32, tokens, up)
    hb, wb = (t.detach().bfloat16().requires_grad_() for t in (h32, w32))
    mine = _grads(lambda h, w, a: chunked_policy_terms(h, w, a, clamp=0.3, chunk_size=7), hb, wb, tokens, up)
    mat = _grads(lambda h, w, a: _materialised(h, w, a, 1.0, 0.3), hb, wb, tokens, up)
    assert mine[1].dtype == torch.bfloat16 and mine[2].dtype == torch.bfloat16
    for got, want, ref in zip([*mine[0], mine[1], mine[2]], [*mat[0], mat[1], mat[2]], [*exact[0], exact[1], exact[2]]):
        assert _rel(got, ref) <= 1.25 * _rel(want, ref) + 1e-6


def test_fp32_head_with_bf16_hidden_multiplies_in_fp32():
    hidden, weight, tokens, up = _inputs(10, 16, 211)
    hb = hidden.detach().bfloat16().requires_grad_()
    terms, gh, gw = _grads(lambda h, w, a: chunked_policy_terms(h, w, a, clamp=0.3, chunk_size=4), hb, weight, tokens, up)
    ref, rh, rw = _grads(lambda h, w, a: _materialised(h.float(), w, a, 1.0, 0.3), hb, weight, tokens, up)
    assert gh.dtype == torch.bfloat16 and gw.dtype == torch.float32
    for got, want in zip(terms, ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert _rel(gh, rh) < 1e-2 and _rel(gw, rw) < 1e-5  # grad_h rounded to bf16 on both sides


def test_fp16_matches_materialised_fp16():
    hidden, weight, tokens, up = _inputs(9, 16, 131)
    h16, w16 = (t.detach().half().requires_grad_() for t in (hidden, weight))
    terms, gh, gw = _grads(lambda h, w, a: chunked_policy_terms(h, w, a, clamp=0.3, chunk_size=4), h16, w16, tokens, up)
    ref, rh, rw = _grads(lambda h, w, a: _materialised(h, w, a, 1.0, 0.3), h16, w16, tokens, up)
    assert gh.dtype == torch.float16 and gw.dtype == torch.float16
    for got, want in zip(terms, ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert _rel(gh, rh) < 5e-3 and _rel(gw, rw) < 5e-3


def test_autocast_matches_materialised_autocast():
    hidden, weight, tokens, up = _inputs(8, 16, 127)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms, gh, gw = _grads(lambda h, w, a: chunked_policy_terms(h, w, a, clamp=0.3), hidden, weight, tokens, up)
        ref, rh, rw = _grads(lambda h, w, a: _materialised(h, w, a, 1.0, 0.3), hidden, weight, tokens, up)
    assert gh.dtype == torch.float32 and gw.dtype == torch.float32
    for got, want in zip(terms, ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert _rel(gh, rh) < 1e-2 and _rel(gw, rw) < 1e-2


# ------------------------------------------------------------------------------------------------ gradcheck
@pytest.mark.parametrize("temperature,clamp", [(1.0, 0.0), (0.8, 0.3), (1.5, 0.5)])
def test_gradcheck_float64(temperature, clamp):
    hidden, weight, tokens, _ = _inputs(4, 3, 11, dtype=torch.float64, seed=3)

    def fn(h, w):
        return tuple(chunked_policy_terms(h, w, tokens, temperature=temperature, clamp=clamp, chunk_size=3))

    assert torch.autograd.gradcheck(fn, (hidden, weight), eps=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), vocab=st.integers(2, 80), clamp=st.floats(0.0, 0.9), temperature=st.floats(0.3, 3.0),
       chunk=st.integers(1, 13), scale=st.floats(0.1, 8.0), seed=st.integers(0, 10**6))
def test_bounds_and_chunk_invariance(n, vocab, clamp, temperature, chunk, scale, seed):
    hidden, weight, tokens, _ = _inputs(n, 6, vocab, seed=seed, scale=scale)
    with torch.no_grad():
        out = chunked_policy_terms(hidden, weight, tokens, temperature=temperature, clamp=clamp, chunk_size=chunk)
        whole = chunked_policy_terms(hidden, weight, tokens, temperature=temperature, clamp=clamp, chunk_size=n)
    kept = vocab - math.floor(clamp * vocab)
    tol = 1e-5
    assert bool((out.logp <= tol).all())
    assert bool((out.entropy >= -tol).all()) and bool((out.entropy <= math.log(vocab) + tol).all())
    assert bool((out.clamped_entropy >= -tol).all()) and bool((out.clamped_entropy <= math.log(kept) + tol).all())
    for a, b in zip(out, whole):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_auto_chunk_size_rule():
    assert auto_chunk_size(4096, 151_936, torch.float32) == 256  # N / 16
    assert auto_chunk_size(100, 151_936, torch.bfloat16) == 128  # at least MIN_ROWS
    assert auto_chunk_size(10**6, 151_936, torch.float32) == 441  # at most a 256 MiB buffer
    assert auto_chunk_size(10**6, 151_936, torch.bfloat16) == 883
    assert auto_chunk_size(10, 10**12) == 1


# ----------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("change,match", [
    (dict(hidden=torch.zeros(3)), "hidden must be"),
    (dict(hidden=torch.zeros(3, 4, dtype=torch.long)), "hidden must be"),
    (dict(weight=torch.zeros(4, 5)), "weight must be .V, d."),
    (dict(tokens=torch.zeros(3)), "tokens must be an integer"),
    (dict(tokens=torch.zeros(2, dtype=torch.long)), "tokens must be an integer"),
    (dict(tokens=torch.tensor([0, 1, 9])), r"tokens must be ids in \[0, V=5\)"),
    (dict(tokens=torch.zeros(3, dtype=torch.long, device="meta")), "tokens must be on hidden's device"),
    (dict(temperature=0.0), "temperature must be"),
    (dict(temperature=float("nan")), "temperature must be"),
    (dict(clamp=1.0), r"clamp .* in \[0, 1\)"),
    (dict(clamp=-0.1), r"clamp .* in \[0, 1\)"),
    (dict(chunk_size=0), "chunk_size must be"),
])
def test_bad_inputs_raise_clear_errors(change, match):
    args = dict(hidden=torch.zeros(3, 4), weight=torch.zeros(5, 4), tokens=torch.tensor([0, 1, 2]), temperature=1.0,
                clamp=0.0, chunk_size=None)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        chunked_policy_terms(args.pop("hidden"), args.pop("weight"), args.pop("tokens"), **args)


def test_empty_input():
    out = chunked_policy_terms(torch.zeros(0, 4), torch.zeros(5, 4), torch.zeros(0, dtype=torch.long))
    assert all(t.shape == (0,) for t in out)


def test_sub_chunks_and_sampled_selection(monkeypatch):
    """Several cache-sized passes per matmul chunk, and V > 4 * SAMPLE (the sampled bracket of kth_smallest)."""
    hidden, weight, tokens, up = _inputs(7, 8, 20_011, scale=2.0)
    monkeypatch.setattr(aent.chunked, "CHUNK_BYTES", 4 * 20_011 * 2)  # two rows per pass
    terms, gh, gw = _grads(lambda h, w, a: chunked_policy_terms(h, w, a, temperature=0.9, clamp=0.33, chunk_size=5),
                           hidden, weight, tokens, up)
    ref, rh, rw = _grads(lambda h, w, a: _materialised(h, w, a, 0.9, 0.33), hidden, weight, tokens, up)
    for got, want in zip(terms, ref):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert _rel(gh, rh) < 1e-5 and _rel(gw, rw) < 1e-5


# ------------------------------------------------------------------------------------ through EntropyControl
def policy_batch(seed=5, b=4, t=6, d=12, vocab=257, temperature=1.0, noise=0.3):
    """Hidden states (b, t, d), an LM head (vocab, d) and EntropyControl.loss's other inputs; two rows masked, old
    log-probs the current ones plus ``noise`` (some ratios inside the clip range, some outside)."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(b, t, d, generator=g).mul(2.0).requires_grad_()
    weight = torch.randn(vocab, d, generator=g).mul(0.5).requires_grad_()
    actions = torch.randint(0, vocab, (b, t), generator=g)
    mask = torch.ones(b, t)
    mask[0, 4:] = 0
    mask[2, 1:] = 0
    with torch.no_grad():
        old_logp = aent.token_logprobs(hidden @ weight.t(), actions, temperature) * mask
        old_logp += noise * torch.randn(b, t, generator=g)
    adv = torch.randn(b, generator=g)
    return hidden, weight, dict(actions=actions, old_logp=old_logp, adv=adv, mask=mask, temperature=temperature)


@pytest.mark.parametrize("name", sorted(aent.PRESETS))
@pytest.mark.parametrize("temperature", [1.0, 0.8])
def test_entropy_control_hidden_path_equals_logits_path(name, temperature):
    """Every preset: the loss, its metrics and the gradients to hidden and weight agree between the two inputs."""
    hidden, weight, kw = policy_batch(b=3, noise=0.05, temperature=temperature)
    ref = aent.EntropyControl(aent.PRESETS[name]).loss(logits=hidden @ weight.t(), **kw)
    rh, rw = torch.autograd.grad(ref.loss, (hidden, weight))
    out = aent.EntropyControl(aent.PRESETS[name]).loss(hidden=hidden, lm_head_weight=weight, **kw)
    gh, gw = torch.autograd.grad(out.loss, (hidden, weight))
    assert out.loss.item() == pytest.approx(ref.loss.item(), rel=1e-5, abs=1e-6)
    assert out.metrics.keys() == ref.metrics.keys()
    for key, v in ref.metrics.items():
        assert out.metrics[key] == pytest.approx(v, rel=1e-5, abs=1e-6), key
    assert _rel(gh, rh) < 1e-5 and _rel(gw, rw) < 1e-5


def test_entropy_control_needs_one_input():
    ctrl = aent.EntropyControl(aent.EntropyConfig())
    z = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="either logits, or hidden and lm_head_weight"):
        ctrl.loss(actions=z.long(), old_logp=z, adv=z[:, 0], mask=z, hidden=torch.zeros(1, 2, 3))


def test_entropy_control_passes_its_chunk_size(monkeypatch):
    """Both hidden-state paths get the config's chunk size: fused (per-token methods) and terms (the others)."""
    import aent.regularizer as reg

    seen = []
    for name in ("chunked_policy_terms", "chunked_policy_loss"):
        real = getattr(reg, name)
        monkeypatch.setattr(reg, name, lambda *a, _real=real, _name=name, **kw: seen.append((_name, kw["chunk_size"]))
                            or _real(*a, **kw))
    z = torch.zeros(2, 3)
    for method in ("none", "top_entropy"):
        for chunk in (None, 2):
            aent.EntropyControl(aent.EntropyConfig(method=method, chunk_size=chunk)).loss(
                hidden=torch.randn(2, 3, 4), lm_head_weight=torch.randn(9, 4), actions=z.long(), old_logp=z,
                adv=z[:, 0], mask=torch.ones(2, 3))
    assert seen == [("chunked_policy_loss", None), ("chunked_policy_loss", 2), ("chunked_policy_terms", None),
                    ("chunked_policy_terms", 2)]
