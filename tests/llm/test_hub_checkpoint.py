"""The real-model path, end to end on CPU, with a tiny Qwen2 laid out as a hub checkpoint (llm.tiny_checkpoint).

Checks what a Qwen2.5-Math folder exercises and the toy default does not: a ChatML chat template that formats the
prompts, a ``generation_config.json`` whose ``eos_token_id`` is a list different from the tokenizer's EOS, the
paper config (configs/aent_qwen2.5_math_1.5b.yaml) run through ``python -m llm train`` with only shape/size
overrides, and its held-out evaluation read from MATH-500 in the shared data folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llm.config import load_config
from llm.data import format_prompt
from llm.generate import generate, stop_token_ids
from llm.model import load_pretrained
from llm.tiny_checkpoint import write_tiny_qwen2

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "configs" / "aent_qwen2.5_math_1.5b.yaml"
R1 = REPO / "configs" / "aent_r1_distill_qwen_1.5b.yaml"
# Shape / size overrides only: everything else (template qwen_boxed, AEnt settings, eval_task math500) is the paper's.
SMALL = ["max_steps=2", "data.n_train=16", "data.n_test=3", "data.max_prompt_len=96", "rollout.prompts_per_step=2",
         "rollout.group_size=2", "rollout.max_new_tokens=8", "rollout.generate_batch_size=4",
         "optim.mini_batch_size=4", "optim.micro_batch_size=2", 'mixed_precision="no"', "save_every=1",
         "eval_every=2", "eval_samples=1", "model.gradient_checkpointing=false"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Path:
    return write_tiny_qwen2(tmp_path_factory.mktemp("qwen2_hub"))


def test_folder_has_hub_layout(hub):
    gen = json.loads((hub / "generation_config.json").read_text())
    model, tok = load_pretrained(hub)
    im_end, eot = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    assert gen["eos_token_id"] == [im_end, eot] and tok.eos_token_id == eot != im_end
    assert stop_token_ids(model, tok) == {im_end, eot}
    prompt = format_prompt("What is 2 plus 3?", "qwen_boxed", tok)  # rendered by the tokenizer's chat template
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\nWhat is 2 plus 3?<|im_end|>\n" in prompt


def _forced(model, token: int):
    """The same model with an output head that puts almost all mass on ``token``."""
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-30.0)
        head.bias[token] = 30.0
    model.lm_head = head
    return model


@pytest.mark.parametrize("which", ["<|im_end|>", "<|endoftext|>", "plus"])
def test_generation_stops_at_any_eos_id(hub, which):
    model, tok = load_pretrained(hub)
    token = tok.convert_tokens_to_ids(which) if which.startswith("<|") else tok.encode(which)[0]
    _forced(model, token)
    s = generate(model, tok, ["What is 1 plus 1?", "What is 2 plus 2?"], n=2, max_new_tokens=6, temperature=1.0,
                 seed=0)
    assert (s.completion_ids[:, 0] == token).all()
    lengths = s.completion_mask.sum(1).tolist()
    if which == "plus":  # not an EOS id: runs to the budget
        assert lengths == [6] * 4
    else:  # the first token is an EOS id: every row ends there
        assert lengths == [1] * 4 and s.completion_ids.shape[1] == 1


def test_paper_config_evaluates_on_math500(hub, shared_data):
    cfg = load_config(PAPER, [f"model.path={hub}", f"data.task={shared_data / 'gsm8k' / 'train.jsonl'}", *SMALL])
    from llm.problems import load_problems

    _, held_out = load_problems(cfg)
    rows = [json.loads(line) for line in (shared_data / "math_bench" / "math500.jsonl").read_text().splitlines()[:3]]
    assert cfg.data.eval_task == "math500"
    assert [p.question for p in held_out] == [r["problem"] for r in rows]
    assert [p.answer for p in held_out] == [r["answer"] for r in rows]


def _train(hub, out, data_dir, config=PAPER):
    env = {**os.environ, "PYTHONPATH": str(REPO), "AENT_SHARED_DATA": str(data_dir), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "llm", "train", "--config", str(config), f"model.path={hub}", f"output_dir={out}",
           f"data.task={data_dir / 'gsm8k' / 'train.jsonl'}", *SMALL]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


@pytest.mark.parametrize("config", [PAPER, R1], ids=["qwen2.5_math", "r1_distill"])
def test_paper_config_trains_from_hub_layout_folder(hub, shared_data, tmp_path, config):
    run = _train(hub, tmp_path / "run", shared_data, config)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    lambda0 = load_config(config, [f"model.path={hub}"]).entropy.ent_coef
    for r in rows:
        assert 0 < r["clamped_entropy"] < r["entropy"] and r["ent_coef"] == lambda0  # AEnt warm-up: lambda0
        assert 1 <= r["response_len"] <= 8
    final = tmp_path / "run" / "final"
    gen = json.loads((final / "generation_config.json").read_text())
    assert gen["eos_token_id"] == json.loads((hub / "generation_config.json").read_text())["eos_token_id"]
    assert (final / "chat_template.jinja").is_file() or "chat_template" in (final / "tokenizer_config.json").read_text()


def test_paper_config_evaluation_needs_shared_math500(hub, shared_data, tmp_path):
    data = tmp_path / "data"  # training data present, MATH-500 absent: the evaluation set must come from there
    (data / "gsm8k").mkdir(parents=True)
    (data / "gsm8k" / "train.jsonl").write_text((shared_data / "gsm8k" / "train.jsonl").read_text())
    run = _train(hub, tmp_path / "run", data)
    assert run.returncode != 0
    assert "math500" in run.stderr.lower() or "math_bench" in run.stderr
