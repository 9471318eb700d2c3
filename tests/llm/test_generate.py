"""Sampling: inverse-CDF draws against the softmax, nucleus sets against a direct reference, EOS stop, returned
log-probs against a naive full forward, batch / left-padding invariance, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llm.generate import encode_prompts, generate, group_uniforms, position_ids_from_mask, sample_next
from llm.model import ModelConfig, build_model
from llm.tokenizer import build_tokenizer

TEXTS = ["Tom has 3 apples. He buys 4 more. How many?\n3+4=7\n#### 7",
         "Mia has 12 coins. She loses 5. How many?\n12-5=7\n#### 7"] * 4


@pytest.fixture(scope="module")
def lm():
    tok = build_tokenizer(TEXTS, vocab_size=300)
    model = build_model(ModelConfig(hidden=32, layers=2, heads=2, kv_heads=2, intermediate=64, max_position=128),
                        tok, seed=0)
    return model, tok


def test_inverse_cdf_frequencies_equal_the_softmax():
    """A uniform grid of N quantiles picks token a exactly N * pi(a) times (up to one per boundary)."""
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, 1.0]])
    n = 10_000
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    tok, _ = sample_next(logits.expand(n, -1), 0.7, 1.0, None, u)
    counts = np.bincount(tok.numpy(), minlength=5)
    p = torch.softmax(logits[0] / 0.7, -1).double().numpy()
    assert np.all(np.abs(counts - n * p) <= 1)


@given(logits=st.lists(st.floats(-5, 5), min_size=2, max_size=12), top_p=st.floats(0.05, 1.0),
       temp=st.floats(0.3, 2.0))
def test_top_p_keeps_exactly_the_nucleus(logits, top_p, temp):
    """Reference: sort by probability, keep tokens while the mass before them is < top_p."""
    z = torch.tensor([logits])
    p = torch.softmax(z / temp, -1)[0].double().numpy()
    order = np.argsort(-p, kind="stable")
    before = np.cumsum(p[order]) - p[order]
    nucleus = set(order[before < top_p].tolist()) if top_p < 1 else set(range(len(logits)))
    u = (torch.arange(400, dtype=torch.float64) + 0.5) / 400
    tok, lp = sample_next(z.expand(400, -1), temp, top_p, None, u)
    assert set(tok.tolist()) <= nucleus
    # the returned log-prob is that of the untruncated tempered softmax
    assert torch.allclose(lp, torch.log_softmax(z / temp, -1)[0][tok], atol=1e-6)


def test_zero_probability_tokens_are_never_drawn():
    logits = torch.tensor([[0.0, -float("inf"), 0.0, -float("inf")]]).expand(3, -1)
    tok, _ = sample_next(logits, 1.0, 1.0, None, torch.tensor([0.0, 0.5, 1.0 - 1e-12], dtype=torch.float64))
    assert tok.tolist() == [0, 2, 2]


def test_greedy_is_argmax():
    logits = torch.randn(6, 11, generator=torch.Generator().manual_seed(0))
    tok, lp = sample_next(logits, 0.0, 1.0, None)
    assert torch.equal(tok, logits.argmax(-1))
    assert torch.allclose(lp, torch.log_softmax(logits, -1).gather(-1, tok[:, None])[:, 0])


def test_encode_prompts_left_pads_and_positions_count_real_tokens(lm):
    _, tok = lm
    ids, mask = encode_prompts(tok, ["3+4=", "Tom has 3 apples."])
    assert mask[0, 0] == 0 and mask[:, -1].tolist() == [1, 1]
    assert torch.equal(ids[mask == 0], torch.full_like(ids[mask == 0], tok.pad_token_id))
    pos = position_ids_from_mask(mask)
    assert pos[0, -1] == mask[0].sum() - 1 and pos[1].tolist() == list(range(ids.shape[1]))
    with pytest.raises(ValueError, match="non-empty"):
        encode_prompts(tok, [])


def _naive_logp(model, prompt_ids, comp_ids, temperature):
    """Full forward over [prompt | completion] without cache or padding: log softmax(z / T) of each token."""
    ids = torch.cat([prompt_ids, comp_ids])[None]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1]
    return torch.log_softmax(logits / temperature, -1).gather(-1, comp_ids[:, None])[:, 0]


def test_samples_stop_at_eos_and_logps_equal_a_naive_forward(lm):
    model, tok = lm
    s = generate(model, tok, ["Tom has 3 apples.", "Mia"], n=3, temperature=1.3, max_new_tokens=12, seed=0)
    assert s.completion_ids.shape[0] == 6 and len(s.texts) == 6
    eos = tok.eos_token_id
    for r in range(6):
        m = s.completion_mask[r].bool()
        n = int(m.sum())
        assert m[:n].all() and not m[n:].any()  # contiguous
        comp = s.completion_ids[r, :n]
        assert (comp[:-1] != eos).all()  # nothing after the first EOS
        assert comp[-1] == eos or n == 12
        p_ids = s.prompt_ids[r][s.prompt_mask[r].bool()]
        assert torch.allclose(s.logp[r, :n], _naive_logp(model, p_ids, comp, 1.3), atol=1e-5)
        assert (s.logp[r, n:] == 0).all()


def test_uniforms_make_samples_independent_of_batching_and_left_padding(lm):
    model, tok = lm
    prompts = ["Tom has 3 apples. He buys 4 more.", "Mia", "12-5="]
    u = group_uniforms([11, 22, 33], 2, 10)
    full = generate(model, tok, prompts, n=2, temperature=1.0, max_new_tokens=10, uniforms=u)
    split = generate(model, tok, prompts, n=2, temperature=1.0, max_new_tokens=10, uniforms=u, batch_size=2)
    alone = generate(model, tok, prompts[1:2], n=2, temperature=1.0, max_new_tokens=10, uniforms=u[2:4])
    assert full.texts == split.texts
    assert full.texts[2:4] == alone.texts  # "Mia" is left padded in the batch, unpadded alone
    assert torch.allclose(full.logp[2:4, :alone.logp.shape[1]], alone.logp, atol=1e-5)


def test_same_seed_same_samples_and_group_uniforms_per_prompt(lm):
    model, tok = lm
    a = generate(model, tok, ["Tom"], n=4, max_new_tokens=8, seed=5)
    b = generate(model, tok, ["Tom"], n=4, max_new_tokens=8, seed=5)
    assert a.texts == b.texts and torch.equal(a.completion_ids, b.completion_ids)
    u = group_uniforms([1, 2], 3, 5)
    assert u.shape == (6, 5) and torch.equal(u[3:], group_uniforms([2], 3, 5))


def test_bad_arguments_raise_clear_errors(lm):
    model, tok = lm
    with pytest.raises(ValueError, match="top_p"):
        generate(model, tok, ["a"], top_p=0.0)
    with pytest.raises(ValueError, match="exactly one"):
        generate(model, tok)
    with pytest.raises(ValueError, match="uniforms"):
        generate(model, tok, ["a"], n=2, max_new_tokens=4, uniforms=torch.rand(3, 4))
