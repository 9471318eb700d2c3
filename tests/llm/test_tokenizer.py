"""llm.tokenizer: byte-level BPE built from task text: round trip, digit splitting, size, caching, loading."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm.data import format_prompt, format_target, make_task
from llm.tokenizer import bpe_size, build_tokenizer, load_or_build_tokenizer, load_tokenizer


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    train, _ = make_task("arithmetic", 200, 0, seed=0)
    return [format_prompt(p) for p in train] + [format_target(p) for p in train]


@pytest.fixture(scope="module")
def tok(corpus):
    return build_tokenizer(corpus, 1024)


def test_specials_padding_and_size(tok):
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 0
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id == 1
    assert tok.padding_side == "left"
    assert len(tok) == 1024  # filled with reserved tokens up to the requested size
    assert 256 + 2 < bpe_size(tok) < 1024  # BPE itself stops early on templated text
    batch = tok(["1", "12 34"], padding=True)
    assert batch["attention_mask"][0][0] == 0 and batch["input_ids"][0][0] == tok.pad_token_id


def test_without_reserve_the_vocabulary_is_what_bpe_learned(corpus, tok):
    bare = build_tokenizer(corpus, 1024, reserve_to_size=False)
    assert len(bare) == bpe_size(bare) == bpe_size(tok)
    assert bare("Tom has 12 apples.")["input_ids"] == tok("Tom has 12 apples.")["input_ids"]


def test_bpe_reaches_the_requested_size_on_a_rich_corpus():
    """With enough distinct frequent words, BPE alone reaches vocab_size exactly."""
    rng = random.Random(0)
    words = ["".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(1500)]
    texts = [" ".join(rng.choices(words, k=30)) for _ in range(400)]
    t = build_tokenizer(texts, 1024, reserve_to_size=False)
    assert len(t) == 1024


@given(st.text(max_size=60))
def test_round_trip_any_text(tok, text):
    assert tok.decode(tok(text)["input_ids"]) == text


@given(st.integers(0, 10**12))
def test_every_digit_is_its_own_token(tok, n):
    pieces = tok.convert_ids_to_tokens(tok(f"x {n}=")["input_ids"])
    digits = [p for p in pieces if any(c.isdigit() for c in p)]
    assert "".join(digits) == str(n) and all(len(p) == 1 for p in digits)


def test_cache_reuses_identical_inputs(tmp_path, corpus):
    a = load_or_build_tokenizer(corpus, 600, tmp_path)
    folders = sorted(p.name for p in tmp_path.iterdir())
    mtime = (tmp_path / folders[0] / "tokenizer.json").stat().st_mtime_ns
    b = load_or_build_tokenizer(corpus, 600, tmp_path)
    assert a.get_vocab() == b.get_vocab() and len(b) == 600
    assert sorted(p.name for p in tmp_path.iterdir()) == folders
    assert (tmp_path / folders[0] / "tokenizer.json").stat().st_mtime_ns == mtime  # not rebuilt
    load_or_build_tokenizer(corpus, 700, tmp_path)
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("bpe-")]) == 2


def test_save_and_load_by_path(tmp_path, tok):
    tok.save_pretrained(tmp_path / "tk")
    back = load_tokenizer(tmp_path / "tk")
    text = "Mia has 15 cookies.\n15-3=12\n#### 12"
    assert back(text)["input_ids"] == tok(text)["input_ids"] and len(back) == len(tok)
    assert back.padding_side == "left" and back.pad_token_id == 1


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 258"):
        build_tokenizer(["a"], 100)
    with pytest.raises(ValueError, match="texts is empty"):
        load_or_build_tokenizer([], 512, tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer(tmp_path / "missing")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file"):
        load_tokenizer(tmp_path / "f.txt")
