"""LoRA in llm/ (model.lora_r): only adapters train, resume is exact, adapters save, the merge is W + (alpha/r) B A.

References: the base weights of the model built before training (must be bit-identical after it); an
uninterrupted run (resume must reproduce its metrics row by row); peft's own forward of the adapted model (the
merged plain model must give the same logits).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from llm.config import load_config  # noqa: E402
from llm.lora import apply_lora, merged_state_dict  # noqa: E402
from llm.model import load_model  # noqa: E402
from llm.train import train  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BASE = ["model.hidden=32", "model.layers=1", "model.heads=2", "model.kv_heads=2", "model.intermediate=64",
        "model.vocab_size=300", "model.warm_start_steps=0", "data.n_train=16", "data.n_test=4",
        "rollout.prompts_per_step=2", "rollout.group_size=4", "rollout.max_new_tokens=8", "optim.lr=0.05",
        "optim.mini_batch_size=4", "optim.micro_batch_size=2", "entropy.method=aent", "entropy.warmup=0",
        "entropy.band_low=2.0", "entropy.band_high=2.5", "entropy.coef_lr=0.01", "max_steps=4", "save_every=2",
        "keep_checkpoints=5", "progress=false", "tensorboard=false", "eval_every=0",
        "reward=tests.llm.test_train:digit_reward", "model.lora_r=4", "model.lora_alpha=8",
        "model.lora_targets=q_proj,v_proj,gate_proj", "model.lora_merge=true"]


def _cfg(tmp, name, *extra):
    return load_config(REPO / "configs" / "tiny.yaml",
                       [*BASE, f"output_dir={tmp / name}", f"cache_dir={tmp / 'cache'}", *extra])


def _rows(cfg):
    return [json.loads(x) for x in (Path(cfg.output_dir) / "metrics.jsonl").read_text().splitlines()]


def _ckpt_state(cfg, step):
    folder = Path(cfg.output_dir) / "checkpoints" / f"step-{step:08d}"
    files = list(folder.glob("pytorch_model*.bin")) + list(folder.glob("model*.safetensors"))
    assert files, sorted(p.name for p in folder.iterdir())
    if files[0].suffix == ".bin":
        return torch.load(files[0], map_location="cpu", weights_only=True)
    from safetensors.torch import load_file

    return load_file(files[0])


def _initial(cfg):
    from llm.policy import build_policy
    from llm.problems import load_problems

    train_set, _ = load_problems(cfg)
    model, tok = build_policy(cfg.model, cfg.data, train_set, cache_dir=cfg.cache_dir)
    return model, tok


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lora")
    cfg = _cfg(tmp, "full")
    train(cfg)
    return tmp, cfg


def test_only_adapter_weights_change(run):
    _, cfg = run
    model, _ = _initial(cfg)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    after = _ckpt_state(cfg, 4)
    assert set(after) == set(before) or set(after) <= set(before)
    lora = [k for k in after if ".lora_" in k]
    assert lora and all(any(t in k for t in ("q_proj", "v_proj", "gate_proj")) for k in lora)
    for k, v in after.items():
        if ".lora_" in k:
            continue
        assert torch.equal(v, before[k]), f"base weight {k} changed"
    changed = [k for k in lora if not torch.equal(after[k], before[k])]
    assert any(".lora_B." in k for k in changed)  # B starts at zero: the adapters really trained
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n for n in trainable)


def test_resume_equals_uninterrupted(run):
    tmp, cfg = run
    half = _cfg(tmp, "half", "max_steps=2")
    train(half)
    resumed = _cfg(tmp, "half", "resume=true")
    train(resumed)
    a, b = _rows(cfg), _rows(resumed)
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b):
        for k in ra:
            if not k.startswith("time_"):
                assert ra[k] == pytest.approx(rb[k], abs=1e-6, rel=1e-6, nan_ok=True), (ra["step"], k)
    sa, sb = _ckpt_state(cfg, 4), _ckpt_state(resumed, 4)
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=1e-6)


def test_adapter_saved_and_merge_equals_peft_forward(run):
    _, cfg = run
    final = Path(cfg.output_dir) / "final"
    assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()
    assert json.loads((final / "adapter_config.json").read_text())["r"] == 4
    model, tok = _initial(cfg)
    model.load_state_dict(_ckpt_state(cfg, 4))
    merged = load_model(Path(cfg.output_dir) / "final_merged")
    ids = torch.randint(2, len(tok), (3, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # and the merge is not the identity: the base model alone differs
    with torch.no_grad(), model.disable_adapter():
        base = model(input_ids=ids).logits
    assert (base - want).abs().max() > 1e-4


def test_merged_state_dict_formula():
    """W + (alpha / r) B A on a two-layer toy, against peft's own merge_and_unload."""
    net = torch.nn.Sequential()
    net.add_module("q_proj", torch.nn.Linear(6, 5))
    net.add_module("o_proj", torch.nn.Linear(5, 4))
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(net, LoraConfig(r=2, lora_alpha=6, target_modules=["q_proj"], lora_dropout=0.0))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.normal_()
    mine = merged_state_dict(pm.state_dict(), 6 / 2)
    ref = pm.merge_and_unload().state_dict()
    assert mine.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(mine[k], ref[k])


def test_bad_targets_fail_clearly():
    net = torch.nn.Sequential()
    net.add_module("q_proj", torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="model.lora_targets"):
        apply_lora(net, 2, 4.0, ("nope_proj",))
    with pytest.raises(ValueError, match="model.lora_r"):
        load_config(REPO / "configs" / "tiny.yaml", ["model.lora_r=-1"])


def test_policy_unwraps_a_lora_model_to_its_base():
    """llm.policy reaches the base model's forward through lora.is_lora (one check, not a copy of it)."""
    from llm.lora import is_lora
    from llm.model import ModelConfig, build_model
    from llm.policy import _inner
    from llm.tokenizer import build_tokenizer

    tok = build_tokenizer(["3+4=7 #### 7"] * 4, vocab_size=300)
    net = build_model(ModelConfig(hidden=32, layers=1, heads=2, kv_heads=2, intermediate=64, max_position=64), tok)
    peft_model = apply_lora(net, 2, 4.0, ("q_proj",))
    assert is_lora(peft_model) and not is_lora(net)
    assert _inner(peft_model) is peft_model.get_base_model() and _inner(net) is net
