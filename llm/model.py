"""Build a small causal language model from a config, or load a real checkpoint by path.

The CPU default is a small Qwen2-style decoder (hidden 128, 4 heads, SwiGLU 512, tied embeddings) whose vocabulary
is the project's own tokenizer: 1.12 M parameters with 4 layers and a 512-token vocabulary, 1.58 M with 4 layers
and 4,096 tokens, 1.05 M with 2 layers and 4,096 tokens (count = formula in tests/llm/test_model.py). Real checkpoints
(Qwen2.5-Math-1.5B, the model of the AEnt paper, arXiv 2509.03493) are loaded from a local folder with
`load_model` / `load_pretrained` (model + tokenizer); nothing is ever downloaded from a model hub by the tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from aent.validation import check, is_int, is_num

__all__ = ["ARCHS", "DTYPES", "ModelConfig", "build_model", "count_parameters", "load_model", "load_pretrained",
           "save_atomic"]

ARCHS = ("qwen2", "llama")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a decoder-only transformer built from scratch (`build_model`).

    The one declaration of these fields: the trainer's ``model`` config section (``llm.config.ModelSection``)
    inherits them, so a field added, renamed or re-defaulted here is one in the YAML configs too. Each field's
    docstring is its documentation in the generated field table (docs/llm/trainer.md).
    """

    arch: str = "qwen2"
    """Built model only: qwen2 (Qwen2ForCausalLM, q/k/v biases) or llama (LlamaForCausalLM, no biases)."""
    hidden: int = 128
    """Built model only: width of the residual stream (>= 1, divisible by heads, even head dim)."""
    layers: int = 4
    """Built model only: number of decoder blocks (>= 1)."""
    heads: int = 4
    """Built model only: query heads (>= 1, divides hidden)."""
    kv_heads: int = 4
    """Built model only: key/value heads (>= 1, divides heads; grouped-query attention when fewer)."""
    intermediate: int = 512
    """Built model only: width of the SwiGLU MLP (>= 1)."""
    max_position: int = 512
    """Built model only: longest sequence (prompt + completion) the rotary embedding is set up for; must hold
    data.max_prompt_len + rollout.max_new_tokens."""
    tie_embeddings: bool = True
    """Built model only: share the input embedding with lm_head."""
    dtype: str = "float32"
    """Parameter dtype: float32, bfloat16 or float16."""
    init_std: float = 0.02
    """Built model only: standard deviation of the normal weight initialisation (> 0)."""
    rope_theta: float = 10000.0
    """Built model only: base of the rotary position embedding (> 0)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, prefix: str = "ModelConfig.") -> None:
        """Raise one ValueError naming the first bad field (``prefix + field``), its allowed range and value."""
        check(self.arch in ARCHS, "arch", f"one of {ARCHS}", self.arch, prefix)
        for name in ("hidden", "layers", "heads", "kv_heads", "intermediate", "max_position"):
            value = getattr(self, name)
            check(is_int(value) and value >= 1, name, "an integer >= 1", value, prefix)
        check(self.hidden % self.heads == 0, "heads", f"a divisor of hidden = {self.hidden}", self.heads, prefix)
        check((self.hidden // self.heads) % 2 == 0, "hidden/heads (head dim)", "even for rotary embeddings",
              self.hidden // self.heads, prefix)
        check(self.heads % self.kv_heads == 0, "kv_heads", f"a divisor of heads = {self.heads}", self.kv_heads,
              prefix)
        check(self.dtype in DTYPES, "dtype", f"one of {tuple(DTYPES)}", self.dtype, prefix)
        check(is_num(self.init_std) and self.init_std > 0, "init_std", "> 0", self.init_std, prefix)
        check(is_num(self.rope_theta) and self.rope_theta > 0, "rope_theta", "> 0", self.rope_theta, prefix)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build from a plain dict (e.g. a YAML section); unknown keys raise one error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ModelConfig: unknown keys {unknown}; allowed keys are {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (for hashing and saving)."""
        return asdict(self)


def _token_ids(tokenizer) -> tuple[int, int, int | None]:
    """(pad_id, eos_id, bos_id) of a tokenizer; raises if pad or eos is missing."""
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no eos_token_id; the sampler needs it to stop completions")
    if tokenizer.pad_token_id is None:
        raise ValueError("tokenizer has no pad_token_id; set tokenizer.pad_token (e.g. to the eos token)")
    return int(tokenizer.pad_token_id), int(tokenizer.eos_token_id), getattr(tokenizer, "bos_token_id", None)


def build_model(cfg: ModelConfig, tokenizer, *, seed: int = 0):
    """Build a randomly initialised causal LM whose vocabulary is the tokenizer's.

    Args:
        cfg: Model shape.
        tokenizer: A `PreTrainedTokenizerFast` with pad and eos tokens; vocabulary size = `len(tokenizer)`.
        seed: Seed of the weight initialisation (same seed -> identical weights).

    Returns:
        A `Qwen2ForCausalLM` or `LlamaForCausalLM` in eval mode, with `config.pad_token_id` /
        `config.eos_token_id` set from the tokenizer.
    """
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    pad_id, eos_id, bos_id = _token_ids(tokenizer)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads,
        intermediate_size=cfg.intermediate,
        max_position_embeddings=cfg.max_position,
        tie_word_embeddings=cfg.tie_embeddings,
        initializer_range=cfg.init_std,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=bos_id,
    )
    config_cls, model_cls = (Qwen2Config, Qwen2ForCausalLM) if cfg.arch == "qwen2" else (LlamaConfig, LlamaForCausalLM)
    hf_config = config_cls(**common)
    cpu_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = model_cls(hf_config)
    finally:
        torch.random.set_rng_state(cpu_state)
    model.generation_config.pad_token_id = pad_id
    model.generation_config.eos_token_id = eos_id
    return model.to(DTYPES[cfg.dtype]).eval()


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def _looks_like_path(name: str) -> bool:
    """A hub id is "org/name"; anything absolute, relative-dotted, home-based or deeper is a filesystem path."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def load_model(name_or_path: str | os.PathLike, *, dtype: str = "float32", device: str | torch.device = "cpu"):
    """Load a pretrained causal LM from a local folder (or a hub name when the hub is reachable).

    Args:
        name_or_path: A folder written by `save_pretrained`, or a hub id such as "Qwen/Qwen2.5-Math-1.5B".
        dtype: "float32", "bfloat16" or "float16".
        device: Where to put the model.

    Returns:
        The model in eval mode.

    Raises:
        FileNotFoundError: the path does not exist, or the hub is offline (`HF_HUB_OFFLINE=1`) and the name is
            not in the local cache, or the hub cannot be reached.
    """
    from transformers import AutoModelForCausalLM

    if dtype not in DTYPES:
        raise ValueError(f"load_model: dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"load_model: {path} has no config.json; point to a save_pretrained folder")
        source, local_only = str(path), True
    elif path.exists() or _looks_like_path(name):
        raise FileNotFoundError(
            f"load_model: model folder {path} does not exist; pass a folder written by save_pretrained"
        )
    else:
        source = name
        local_only = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=DTYPES[dtype], local_files_only=local_only)
    except Exception as err:
        if not path.is_dir() and not isinstance(err, OSError):
            raise
        if path.is_dir():  # a local folder whose weights do not load: a file cut short, or a foreign file
            first = (str(err).splitlines() or [""])[0][:160]
            weights = ", ".join(f"{f.name} ({f.stat().st_size} bytes)" for f in sorted(path.iterdir())
                                if f.suffix in (".safetensors", ".bin", ".pt"))
            raise ValueError(f"load_model: cannot read the weights in {str(path)!r} [{weights}]: "
                             f"{type(err).__name__}: {first} (is a file cut short? copy it again)") from err
        why = "HF_HUB_OFFLINE is set and it is not in the local cache" if local_only else "the hub is unreachable"
        raise FileNotFoundError(
            f"load_model: cannot load {name!r}: not a local folder and {why}. "
            "Download the checkpoint on a machine with network access and pass its folder path."
        ) from err
    return model.to(device).eval()


def load_pretrained(
    path: str | os.PathLike,
    *,
    tokenizer_path: str | os.PathLike | None = None,
    dtype: str = "float32",
    device: str | torch.device = "cpu",
):
    """Load ``(model, tokenizer)`` saved together with ``save_pretrained`` (e.g. a run's ``final/`` folder).

    Args:
        path: the model folder (or a hub id when the hub is reachable).
        tokenizer_path: tokenizer folder; None = `path`.
        dtype: "float32", "bfloat16" or "float16".
        device: where to put the model.

    Returns:
        ``(model, tokenizer)``: the model in eval mode, the tokenizer padding on the left with a pad token.

    Raises:
        FileNotFoundError: one message naming the missing folder (see :func:`load_model`).
    """
    from llm.tokenizer import load_tokenizer

    model = load_model(path, dtype=dtype, device=device)
    tokenizer = load_tokenizer(tokenizer_path if tokenizer_path is not None else path)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        raise ValueError(
            f"tokenizer at {tokenizer_path or path} has {len(tokenizer)} tokens but the model's embedding has only "
            f"{model.get_input_embeddings().weight.shape[0]} rows; pass the tokenizer saved with this model"
        )
    return model, tokenizer


def save_atomic(model, tokenizer, out_dir: str | os.PathLike, extra: dict[str, str] | None = None) -> Path:
    """Write `model` and `tokenizer` with `save_pretrained` into a temporary folder, then rename it to `out_dir`.

    A reader never sees a half-written folder: either `out_dir` is absent or it is complete. If another process
    finished first, its folder is kept and ours is discarded.

    Args:
        model: A `PreTrainedModel`.
        tokenizer: A tokenizer with `save_pretrained` (or None).
        out_dir: Final folder.
        extra: Optional text files {name: content} written beside the weights (e.g. a manifest).

    Returns:
        The final folder path.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        for fname, content in (extra or {}).items():
            (tmp / fname).write_text(content)
        try:
            os.replace(tmp, out)
        except OSError:
            if not (out / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
