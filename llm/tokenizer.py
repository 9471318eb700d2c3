"""The project's own tokenizer (byte-level BPE trained on the task text) and a loader for real checkpoints.

No tokenizer is downloaded: a model built from scratch gets a byte-level BPE (GPT-2/Qwen style, via the
``tokenizers`` library) trained on the training problems' questions and worked solutions.

Choices, and why:

- **Byte-level alphabet.** All 256 byte symbols are in the vocabulary, so every string round-trips exactly
  (``decode(encode(s)) == s``); hence ``vocab_size >= 256 + number of special tokens``.
- **Digits split one by one** (``pre_tokenizers.Digits(individual_digits=True)``, as in LLaMA and Qwen2): each
  digit is its own token and no merge ever crosses a digit, so ``123`` and ``1234`` share their pieces and
  a small model can learn column arithmetic instead of memorising a token per number.
- **Special tokens:** ``<|endoftext|>`` (id 0, the EOS) and ``<|pad|>`` (id 1, the PAD). No BOS token, as in
  Qwen2: prompts start directly with text. Nothing is appended automatically; the trainer adds EOS where a
  sequence must end.
- **Padding side left**, so that in a batch of prompts every prompt ends at the last position and generation
  continues all rows from the same column.
- **Reaching ``vocab_size``.** BPE stops early when no pair is left that occurs ``min_frequency`` times
  inside one pre-token (merges never cross a word or a digit). The templated synthetic text is small: on 512
  arithmetic problems every word becomes one token after about 230 merges and BPE stops at 492 tokens
  (countdown: 302) whatever ``vocab_size`` asks for. With ``reserve_to_size=True`` (the default) the rest is
  filled with never-seen special tokens ``<|reserved_i|>`` (as Llama 3 reserves ids), so ``len(tokenizer) ==
  vocab_size`` exactly. They model the large tail of task-irrelevant tokens of a real LLM vocabulary, where
  the full-vocabulary entropy bonus spreads probability and the clamped entropy of AEnt (arXiv 2509.03493)
  does not; the vocabulary size sets the clamp's ``k = floor(p V)``. With ``reserve_to_size=False`` the
  vocabulary is only what BPE learned. :func:`bpe_size` reports how many tokens BPE itself reached.

`load_or_build_tokenizer` caches the result in ``cache_dir/bpe-<hash>`` where the hash covers the texts and
every setting, so the same inputs give back the identical tokenizer without retraining.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

__all__ = ["EOS_TOKEN", "PAD_TOKEN", "RESERVED_FORMAT", "bpe_size", "build_tokenizer", "load_or_build_tokenizer", "load_tokenizer"]

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
_SPECIALS = (EOS_TOKEN, PAD_TOKEN)
_FORMAT_VERSION = 1  # bump when the construction below changes, so old caches are not reused


RESERVED_FORMAT = "<|reserved_{}|>"


def bpe_size(tokenizer) -> int:
    """Number of tokens that are not reserved fillers (bytes + merges + eos/pad)."""
    return sum(1 for t in tokenizer.get_vocab() if not (t.startswith("<|reserved_") and t.endswith("|>")))


def _wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


def build_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 4096,
    *,
    split_digits: bool = True,
    min_frequency: int = 2,
    reserve_to_size: bool = True,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts`.

    Args:
        texts: training text, e.g. questions and worked solutions of the training split.
        vocab_size: largest vocabulary, special tokens included (>= 258).
        split_digits: put every digit in its own token (see module docstring).
        min_frequency: a pair is merged only if it occurs at least this often (>= 1).
        reserve_to_size: fill the vocabulary up to exactly `vocab_size` with reserved special tokens when BPE
            stops early (see module docstring).

    Returns:
        A ``PreTrainedTokenizerFast`` with eos ``<|endoftext|>``, pad ``<|pad|>``, left padding,
        and ``len(tokenizer) == vocab_size`` (``<= vocab_size`` when ``reserve_to_size`` is False).
    """
    low = 256 + len(_SPECIALS)
    if not isinstance(vocab_size, int) or vocab_size < low:
        raise ValueError(f"vocab_size must be an integer >= {low} (256 bytes + special tokens), got {vocab_size!r}")
    if not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be an integer >= 1, got {min_frequency!r}")
    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if split_digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(iter(texts), trainer=trainer)
    missing = vocab_size - tok.get_vocab_size()
    if reserve_to_size and missing > 0:
        tok.add_special_tokens([RESERVED_FORMAT.format(i) for i in range(missing)])
    return _wrap(tok)


def _cache_key(texts: Sequence[str], settings: dict) -> str:
    h = hashlib.sha256(json.dumps({**settings, "format": _FORMAT_VERSION}, sort_keys=True).encode())
    for t in texts:
        h.update(len(t).to_bytes(8, "little"))
        h.update(t.encode("utf-8"))
    return h.hexdigest()[:16]


def load_or_build_tokenizer(
    texts: Sequence[str],
    vocab_size: int = 4096,
    cache_dir: str | os.PathLike | None = None,
    *,
    split_digits: bool = True,
    min_frequency: int = 2,
    reserve_to_size: bool = True,
) -> PreTrainedTokenizerFast:
    """Return the cached tokenizer for these texts and settings, training and caching it on a miss.

    Args:
        texts: training text (the cache key hashes all of it, in order).
        vocab_size: see :func:`build_tokenizer`.
        cache_dir: folder holding ``bpe-<hash>`` subfolders; None trains without caching.
        split_digits: see :func:`build_tokenizer`.
        min_frequency: see :func:`build_tokenizer`.
        reserve_to_size: see :func:`build_tokenizer`.

    Returns:
        The tokenizer (a fresh object; equal vocabulary and settings on every call with the same inputs).
    """
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: the tokenizer needs training text (questions and solutions)")
    settings = {"vocab_size": vocab_size, "split_digits": split_digits, "min_frequency": min_frequency,
                "reserve_to_size": reserve_to_size}
    if cache_dir is None:
        return build_tokenizer(texts, **settings)
    target = Path(cache_dir) / f"bpe-{_cache_key(texts, settings)}"
    if (target / "tokenizer.json").is_file():
        return load_tokenizer(target)
    tok = build_tokenizer(texts, **settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-bpe-", dir=target.parent))
    try:
        tok.save_pretrained(tmp)
        os.replace(tmp, target)  # atomic: concurrent builders leave one complete folder
    except OSError:
        if not (target / "tokenizer.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_tokenizer(target)


def _looks_like_path(name: str) -> bool:
    """Hub ids are "name" or "org/name"; anything else with a separator or a leading ./ ~ is a path."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def load_tokenizer(name_or_path: str | os.PathLike, *, local_files_only: bool = False):
    """Load a tokenizer from a folder written by ``save_pretrained`` (or a hub id when the hub is reachable).

    Args:
        name_or_path: local folder, or a hub id such as ``"Qwen/Qwen2.5-Math-1.5B"``.
        local_files_only: never contact the hub (use only the local folder or the local HF cache).

    Returns:
        The tokenizer, with padding side "left" and, when it had none, ``pad_token = eos_token``.

    Raises:
        FileNotFoundError: the path does not exist, or the hub id cannot be reached / found.
    """
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FileNotFoundError(f"tokenizer path {name!r} is a file; pass the folder written by save_pretrained")
        tok = AutoTokenizer.from_pretrained(str(path))
    elif isinstance(name_or_path, Path) or _looks_like_path(name):
        raise FileNotFoundError(f"tokenizer folder {name!r} does not exist")
    else:
        try:
            tok = AutoTokenizer.from_pretrained(name, local_files_only=local_files_only)
        except Exception as e:  # hub errors come in many types: offline, 404, gated, bad repo id
            raise FileNotFoundError(
                f"cannot load tokenizer {name!r}: it is not a local folder and the Hugging Face hub could not "
                f"be reached or has no such repo ({type(e).__name__}). Pass the path of a local folder "
                "written by save_pretrained."
            ) from e
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
