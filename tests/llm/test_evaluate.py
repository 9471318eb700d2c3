"""llm.evaluate: unbiased pass@k against brute-force enumeration, aggregation against hand counts, and the
end-to-end evaluation of a tiny saved model (batch-size invariance, CLI, errors)."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import llm.generate
from llm.data import make_task
from llm.eval_config import EvalConfig
from llm.evaluate import eval_main, evaluate, evaluate_cli, pass_at_k
from llm.model import ModelConfig, build_model
from llm.tokenizer import build_tokenizer


@given(st.integers(1, 9).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_equals_enumeration(nck):
    """pass@k = share of the k-subsets of the n samples that hold at least one correct sample."""
    n, c, k = nck
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_hand_values_and_errors():
    assert pass_at_k(4, 1, 1) == 0.25 and pass_at_k(4, 0, 4) == 0.0 and pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    for bad in [(0, 0, 1), (3, 4, 1), (3, 1, 4), (3, 1, 0)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


def test_aggregation_against_hand_counts(monkeypatch):
    """With fixed completions (3 problems x 4 samples: 4, 1 and 0 correct) the metrics are hand-computed."""
    problems = make_task("arithmetic", 3, 0, seed=0, difficulty=1)[0]
    right = [f"#### {p.answer}" for p in problems]
    texts = [right[0]] * 4 + [right[1], "#### -1", "", "x"] + ["#### -1"] * 4
    calls = []

    def fake_generate(model, tokenizer, prompts, *, n, max_new_tokens, **kw):
        calls.append(len(prompts))
        start = sum(calls[:-1]) * n
        rows = texts[start : start + len(prompts) * n]
        mask = torch.ones(len(rows), 3, dtype=torch.long)
        return llm.generate.Samples(mask, mask, mask, mask, mask.float(), rows, n)

    monkeypatch.setattr(llm.generate, "generate", fake_generate)
    r = evaluate(None, None, problems, samples=4, batch_size=8, max_new_tokens=3)
    assert calls == [2, 1]  # batch_size 8 rows = 2 problems x 4 samples per call
    assert r["mean@k"] == r["mean@4"] == r["pass@1"] == r["accuracy"] == pytest.approx((1 + 0.25 + 0) / 3)
    assert r["pass@2"] == pytest.approx((1 + 0.5 + 0) / 3)  # 1 - C(3,2)/C(4,2) = 1/2 for c = 1
    assert r["pass@4"] == pytest.approx(2 / 3)
    assert r["response_len"] == 3 and r["truncated_frac"] == 1.0


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    train, _ = make_task("arithmetic", 32, 0, seed=0, difficulty=1)
    tok = build_tokenizer([p.question for p in train] + [p.solution for p in train], 300)
    model = build_model(ModelConfig(hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64), tok, seed=0)
    path = tmp_path_factory.mktemp("m") / "final"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model, tok, path


def test_evaluate_real_model_is_seeded_and_batch_size_invariant(saved):
    model, tok, _ = saved
    _, test = make_task("arithmetic", 0, 5, seed=0, difficulty=1)
    kw = dict(samples=3, temperature=1.0, max_new_tokens=6, seed=7, return_texts=True)
    a = evaluate(model, tok, test, batch_size=3, **kw)
    b = evaluate(model, tok, test, batch_size=64, **kw)
    assert a["texts"] == b["texts"] and a["mean@k"] == b["mean@k"]
    c = evaluate(model, tok, test, batch_size=3, **{**kw, "seed": 8})
    assert c["texts"] != a["texts"]
    assert 1 <= a["response_len"] <= 6 and 0 <= a["pass@1"] <= a["pass@2"] <= a["pass@3"] <= 1
    g = evaluate(model, tok, test, samples=1, temperature=0.0, max_new_tokens=6)
    assert 0 <= g["pass@1"] <= 1
    with pytest.raises(ValueError, match="greedy"):
        evaluate(model, tok, test, samples=2, temperature=0.0)
    with pytest.raises(ValueError, match="problems is empty"):
        evaluate(model, tok, [])


def test_evaluate_cli_and_main(saved, tmp_path, capsys):
    _, _, path = saved
    r = evaluate_cli(EvalConfig(str(path), "arithmetic", n=3, samples=2, max_new_tokens=4, progress=False,
                                difficulty=1))
    assert r["n_problems"] == 3 and r["samples"] == 2 and r["task"] == "arithmetic" and "mean@2" in r
    out = tmp_path / "r.json"
    assert eval_main(["--model", str(path), "--task", "arith", "--n", "2", "--samples", "1",
                      "--max-new-tokens", "3", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_problems"] == 2
    capsys.readouterr()
    assert eval_main(["--model", str(tmp_path / "missing"), "--n", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_list_golds_are_counted_and_graded_as_lists(monkeypatch, shared_data):
    """MATH-500's list golds (1,-2; 3, 5, 7; -2,1): the list in another order is correct, its first item and the
    decimal-comma reading (-2.1 for -2,1) are not; the result says how many golds are lists."""
    from llm.answer_form import is_list, split_list
    from llm.data import load_problems

    problems = [p for p in load_problems("math500", n=0) if is_list(p.answer)]
    assert [p.answer for p in problems] == ["1,-2", "3, 5, 7", "-2,1"]
    texts = []
    for p in problems:
        items = split_list(p.answer)
        texts += [f"\\boxed{{{', '.join(reversed(items))}}}", f"\\boxed{{{items[0]}}}",
                  f"\\boxed{{{'.'.join(items[:2])}}}"]

    def fake_generate(model, tokenizer, prompts, *, n, max_new_tokens, **kw):
        rows = texts[: len(prompts) * n]
        del texts[: len(prompts) * n]
        mask = torch.ones(len(rows), 3, dtype=torch.long)
        return llm.generate.Samples(mask, mask, mask, mask, mask.float(), rows, n)

    monkeypatch.setattr(llm.generate, "generate", fake_generate)
    r = evaluate(None, None, problems, samples=3, max_new_tokens=3, template="boxed")
    assert r["list_golds"] == 3 and r["n_problems"] == 3
    assert r["mean@3"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("kw, field", [({"n": -1}, "n"), ({"samples": 0}, "samples"), ({"top_p": 1.5}, "top_p"),
                                       ({"temperature": -0.1}, "temperature"), ({"dtype": "fp8"}, "dtype"),
                                       ({"difficulty": 0}, "difficulty"), ({"model_path": ""}, "model_path")])
def test_eval_config_names_the_bad_field(kw, field):
    with pytest.raises(ValueError, match=rf"^EvalConfig\.{field} must be"):
        EvalConfig(**{"model_path": "m", **kw})
