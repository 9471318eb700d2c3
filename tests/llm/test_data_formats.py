"""Rows in the formats people already have: verl parquet / JSONL, TRL conversational rows, mapped fields.

Each format is written by the test itself in the layout its framework produces (verl's examples/data_preprocess
gsm8k.py: prompt = chat messages, answer in reward_model.ground_truth; TRL's conversational prompt-only rows).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm.data import DataError, Problem, format_prompt, load_file, load_problems
from llm.data.loaders import default_data_dir

INSTRUCTION = 'Let\'s think step by step and output the final answer after "####".'
QUESTIONS = ["Tom has 3 apples and buys 4 more. How many now?", "Mia has 10 pens and loses 6. How many now?",
             "Sam has 2 cards and gets 5 more. How many now?"]
ANSWERS = ["7", "4", "7"]


def verl_rows() -> list[dict]:
    return [{"data_source": "openai/gsm8k",
             "prompt": [{"role": "user", "content": f"{q} {INSTRUCTION}"}],
             "ability": "math",
             "reward_model": {"style": "rule", "ground_truth": a},
             "extra_info": {"split": "train", "index": i, "answer": f"x\n#### {a}", "question": q}}
            for i, (q, a) in enumerate(zip(QUESTIONS, ANSWERS))]


def trl_rows() -> list[dict]:
    return [{"prompt": [{"role": "system", "content": "Answer in \\boxed{}."}, {"role": "user", "content": q}],
             "solution": f"The answer is \\boxed{{{a}}}."} for q, a in zip(QUESTIONS, ANSWERS)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)  # nested list<struct> and struct columns, as verl writes
    return path


@pytest.mark.parametrize("writer", [write_parquet, write_jsonl])
def test_verl_rows_load(tmp_path, writer):
    path = writer(tmp_path / f"train{'.parquet' if writer is write_parquet else '.jsonl'}", verl_rows())
    problems = load_problems(str(path))
    assert [p.answer for p in problems] == ANSWERS
    assert [p.question for p in problems] == [f"{q} {INSTRUCTION}" for q in QUESTIONS]
    assert [p.meta["messages"] for p in problems] == [r["prompt"] for r in verl_rows()]
    # Mapped fields pick other columns of the same rows.
    mapped = load_file(path, prompt_field="extra_info.question", answer_field="extra_info.answer")
    assert [(p.question, p.answer, p.solution) for p in mapped] == [(q, a, f"x\n#### {a}")
                                                                      for q, a in zip(QUESTIONS, ANSWERS)]
    assert all("messages" not in p.meta for p in mapped)


def test_trl_conversational_rows_load(tmp_path):
    path = write_jsonl(tmp_path / "trl.jsonl", trl_rows())
    problems = load_file(path, n=2)
    assert [p.answer for p in problems] == ANSWERS[:2]  # the last \boxed{} of the solution
    assert problems[0].question == f"Answer in \\boxed{{}}.\n\n{QUESTIONS[0]}"
    assert problems[0].meta["messages"][0] == {"role": "system", "content": "Answer in \\boxed{}."}
    plain = load_file(write_jsonl(tmp_path / "plain.jsonl", [{"question": "1+1?", "answer": "2"}]))
    assert plain == [Problem("1+1?", "2", None, str(tmp_path / "plain.jsonl"), {})]


CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_chat_rows_render_with_the_tokenizer_chat_template(tmp_path):
    from llm.tokenizer import build_tokenizer

    tok = build_tokenizer(QUESTIONS * 4, vocab_size=300)
    problem = load_file(write_jsonl(tmp_path / "trl.jsonl", trl_rows()))[0]
    assert format_prompt(problem, "plain", tok) == f"{problem.question}\n"  # no chat template: the template's text
    tok.chat_template = CHATML
    expected = ("<|im_start|>system\nAnswer in \\boxed{}.<|im_end|>\n"
                f"<|im_start|>user\n{QUESTIONS[0]}<|im_end|>\n<|im_start|>assistant\n")
    assert format_prompt(problem, "plain", tok) == expected
    assert format_prompt(problem, "boxed", tok) == expected  # the row's own messages, whatever the template
    bare = Problem(QUESTIONS[0], "7")
    assert format_prompt(bare, "plain", tok) == f"{QUESTIONS[0]}\n"  # plain rows are unchanged


def test_bad_rows_name_the_field(tmp_path):
    path = write_jsonl(tmp_path / "v.jsonl", verl_rows())
    with pytest.raises(DataError, match=r"v\.jsonl:1: missing field 'reward_model.truth' \(data.answer_field\)"):
        load_file(path, answer_field="reward_model.truth")
    with pytest.raises(DataError, match=r"v\.jsonl:1: missing field 'query' \(data.prompt_field\)"):
        load_file(path, prompt_field="query")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": [{"role": "user"}], "answer": "1"}])
    with pytest.raises(DataError, match=r"bad\.jsonl:1: field 'prompt' is a list, so each item must be a chat"):
        load_file(bad)
    no_user = write_jsonl(tmp_path / "nouser.jsonl", [{"prompt": [{"role": "system", "content": "x"}], "answer": "1"}])
    with pytest.raises(DataError, match="no non-empty 'user' turn"):
        load_file(no_user)


def test_missing_benchmark_names_every_source(monkeypatch, tmp_path):
    monkeypatch.setenv("AENT_SHARED_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    with pytest.raises(FileNotFoundError) as err:
        load_problems("math500")
    text = str(err.value)
    assert "AENT_SHARED_DATA" in text and "checkout" in text and "hf:" in text
    monkeypatch.delenv("AENT_SHARED_DATA")
    assert default_data_dir() == Path(__file__).resolve().parents[3] / "shared" / "data"  # this checkout's


def test_trainer_runs_on_verl_parquet(tmp_path):
    from llm.config import load_config
    from llm.problems import load_problems as trainer_problems
    from llm.train import train

    path = write_parquet(tmp_path / "train.parquet", verl_rows() * 4)
    tiny = ["model.hidden=32", "model.layers=1", "model.heads=2", "model.kv_heads=2", "model.intermediate=64",
            "model.vocab_size=300", "model.warm_start_steps=0", "data.n_train=0", "data.n_test=0",
            "rollout.prompts_per_step=2", "rollout.group_size=2", "rollout.max_new_tokens=4",
            "optim.mini_batch_size=4", "optim.micro_batch_size=4", "tensorboard=false", "progress=false",
            "eval_every=0", "max_steps=1", f"data.task={path}", f"output_dir={tmp_path / 'run'}",
            f"cache_dir={tmp_path / 'cache'}"]
    cfg = load_config(None, tiny)
    train_set, _ = trainer_problems(cfg)
    assert [p.answer for p in train_set] == ANSWERS * 4
    rows = train(cfg)
    assert [r["step"] for r in rows] == [1] and 0.0 <= rows[0]["reward_mean"] <= 1.0
    mapped = load_config(None, [*tiny, "data.prompt_field=extra_info.question", "data.answer_field=extra_info.answer"])
    assert [p.question for p in trainer_problems(mapped)[0]] == QUESTIONS * 4
