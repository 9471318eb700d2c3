"""Policy forward for the update: completion log-probs / entropies against a naive full forward, left-padding
invariance, chunking, wrapped models."""

from __future__ import annotations

import pytest
import torch

from llm.generate import encode_prompts
from llm.model import ModelConfig, build_model
from llm.policy import (
    completion_logits,
    completion_logprobs,
    completion_stats,
)
from llm.tokenizer import build_tokenizer

TEXTS = ["Tom has 3 apples. He buys 4 more. How many?\n3+4=7\n#### 7",
         "Mia has 12 coins. She loses 5. How many?\n12-5=7\n#### 7"] * 4


@pytest.fixture(scope="module")
def lm():
    tok = build_tokenizer(TEXTS, vocab_size=300)
    model = build_model(ModelConfig(hidden=32, layers=2, heads=2, kv_heads=2, intermediate=64, max_position=128),
                        tok, seed=1)
    return model, tok


def _batch(tok, prompts, completions):
    p_ids, p_mask = encode_prompts(tok, prompts)
    rows = [tok(c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for c in completions]
    width = max(map(len, rows))
    c_ids = torch.full((len(rows), width), tok.pad_token_id)
    c_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        c_ids[i, :len(r)], c_mask[i, :len(r)] = torch.tensor(r), 1
    return p_ids, p_mask, c_ids, c_mask


def _naive(model, p_ids, c_ids, temperature):
    """Unpadded full forward of one row: (log softmax(z/T)[a], entropy of softmax(z/T)) per completion token."""
    ids = torch.cat([p_ids, c_ids])[None]
    with torch.no_grad():
        z = model(input_ids=ids).logits[0, len(p_ids) - 1:-1].double() / temperature
    logp_all = torch.log_softmax(z, -1)
    return logp_all.gather(-1, c_ids[:, None])[:, 0], -(logp_all.exp() * logp_all).sum(-1)


PROMPTS = ["Tom has 3 apples.", "Mia", "12-5= How many coins does Mia have?"]
COMPLETIONS = ["3+4=7\n#### 7", "#### 12", "7"]


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_logprobs_and_entropy_equal_a_naive_full_forward(lm, temperature):
    model, tok = lm
    p_ids, p_mask, c_ids, c_mask = _batch(tok, PROMPTS, COMPLETIONS)
    with torch.no_grad():
        st = completion_stats(model, p_ids, p_mask, c_ids, c_mask, temperature=temperature, clamp_p=0.0)
    for i in range(len(PROMPTS)):
        n = int(c_mask[i].sum())
        ref_lp, ref_h = _naive(model, p_ids[i][p_mask[i].bool()], c_ids[i, :n], temperature)
        assert torch.allclose(st.logp[i, :n].double(), ref_lp, atol=1e-5)
        assert torch.allclose(st.entropy[i, :n].double(), ref_h, atol=1e-5)
        assert torch.allclose(st.clamped_entropy[i, :n], st.entropy[i, :n], atol=1e-6)  # p = 0: same entropy
        assert (st.logp[i, n:] == 0).all()


def test_left_padding_does_not_change_logprobs(lm):
    model, tok = lm
    p_ids, p_mask, c_ids, c_mask = _batch(tok, PROMPTS, COMPLETIONS)
    with torch.no_grad():
        batched = completion_logprobs(model, p_ids, p_mask, c_ids, c_mask)
        for i in range(len(PROMPTS)):
            keep = p_mask[i].bool()
            n = int(c_mask[i].sum())
            alone = completion_logprobs(model, p_ids[i:i + 1, keep], p_mask[i:i + 1, keep], c_ids[i:i + 1, :n],
                                        c_mask[i:i + 1, :n])
            extra = torch.cat([torch.full((1, 5), tok.pad_token_id), p_ids[i:i + 1, keep]], 1)
            extra_mask = torch.cat([torch.zeros(1, 5, dtype=torch.long), p_mask[i:i + 1, keep]], 1)
            padded = completion_logprobs(model, extra, extra_mask, c_ids[i:i + 1, :n], c_mask[i:i + 1, :n])
            assert torch.allclose(batched[i, :n], alone[0], atol=1e-5)
            assert torch.allclose(padded[0], alone[0], atol=1e-5)


def test_chunks_and_row_batches_do_not_change_results(lm):
    model, tok = lm
    p_ids, p_mask, c_ids, c_mask = _batch(tok, PROMPTS, COMPLETIONS)
    with torch.no_grad():
        a = completion_stats(model, p_ids, p_mask, c_ids, c_mask, clamp_p=0.3)
        b = completion_stats(model, p_ids, p_mask, c_ids, c_mask, clamp_p=0.3, chunk_size=3, batch_size=1)
    for x, y in ((a.logp, b.logp), (a.entropy, b.entropy), (a.clamped_entropy, b.clamped_entropy)):
        assert torch.allclose(x, y, atol=1e-5)
    assert (a.clamped_entropy <= a.entropy + 1e-5).all()  # removing tail tokens lowers entropy


def test_logits_only_for_completion_positions_and_through_a_wrapper(lm):
    model, tok = lm
    p_ids, p_mask, c_ids, c_mask = _batch(tok, PROMPTS, COMPLETIONS)

    class Wrapper(torch.nn.Module):  # like DDP: forward(*args, **kwargs), the model in .module
        def __init__(self, m):
            super().__init__()
            self.module = m

        def forward(self, *args, **kwargs):
            return self.module(*args, **kwargs)

    with torch.no_grad():
        z = completion_logits(model, p_ids, p_mask, c_ids, c_mask)
        zw = completion_logits(Wrapper(model), p_ids, p_mask, c_ids, c_mask)
    assert z.shape == (*c_ids.shape, len(tok))
    assert torch.equal(z, zw)


def test_differentiable_and_shape_errors(lm):
    model, tok = lm
    p_ids, p_mask, c_ids, c_mask = _batch(tok, PROMPTS, COMPLETIONS)
    lp = completion_logprobs(model, p_ids, p_mask, c_ids, c_mask)
    lp.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.zero_grad(set_to_none=True)
    with pytest.raises(ValueError, match="batch sizes differ"):
        completion_logprobs(model, p_ids[:2], p_mask[:2], c_ids, c_mask)
    with pytest.raises(ValueError, match="temperature"):
        completion_logprobs(model, p_ids, p_mask, c_ids, c_mask, temperature=0.0)
