"""GRPO with AEnt's clamped entropy and adaptive coefficient inside TRL, configured only through ``TrlParser``.

Every setting is a TRL option: ``GRPOConfig``'s own fields plus the ``aent_*`` fields of ``AEntGRPOConfig``
(docs/integrations/trl.md lists them), from a YAML file (``--config``), the command line, or both (the command line
wins). Two recipes sit beside this script:

    # the AEnt paper's setting (Qwen2.5-Math-1.5B on MATH; 8 GPUs, vLLM colocated with training, bf16)
    accelerate launch --num_processes 8 examples/trl_aent.py --config examples/trl_aent_qwen2.5_math_1.5b.yaml \
        --model /models/Qwen2.5-Math-1.5B --data /data/MATH/train.jsonl --output_dir runs/trl-aent
    # a tiny Qwen2 built locally (no download), CPU, 3 optimizer steps with gradient accumulation 2 (the tests run it)
    python examples/trl_aent.py --config examples/trl_aent_tiny.yaml --output_dir /tmp/trl-aent-tiny

Departures from the paper's recipe: TRL's group advantages (scale_rewards="group") and TRL's loss normalisation for
loss_type="dapo" (the token sum over one accumulation window), both documented in docs/integrations/trl.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from trl import TrlParser

from aent.integrations.trl import AEntGRPOConfig, AEntGRPOTrainer


@dataclass
class ScriptArguments:
    """What the script trains on (the training settings are AEntGRPOConfig's)."""

    model: str = field(metadata={"help": "model folder in the hub layout, or 'tiny' for a tiny local Qwen2"})
    data: str | None = field(default=None, metadata={
        "help": "JSONL / parquet of MATH problems (problem or question; answer or solution); not with model=tiny"})


def boxed_reward(completions, answer, **kwargs) -> list[float]:
    """1.0 when the completion's last \\boxed{} equals the reference answer (the project's MATH checker)."""
    from llm.rewards import correctness_reward

    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return correctness_reward(texts, [str(a) for a in answer])


def length_reward(completions, **kwargs) -> list[float]:
    """A reward a random tiny model can earn differently within a group (completion length mod 3)."""
    return [float(len(c[0]["content"]) % 3) for c in completions]


def load_math(path: str):
    """A JSONL / parquet of MATH problems as a conversational dataset (the project's loader: question / problem
    fields, the answer from answer fields or a solution's last \\boxed{})."""
    from datasets import Dataset

    from llm.data import load_problems

    return Dataset.from_list([{"prompt": [{"role": "user", "content": p.question}], "answer": str(p.answer)}
                              for p in load_problems(path)])


def build_trainer(argv: list[str] | None = None) -> AEntGRPOTrainer:
    """The trainer the command line (and its --config YAML) describes, through TrlParser only."""
    script, args = TrlParser((ScriptArguments, AEntGRPOConfig)).parse_args_and_config(argv)
    if script.model == "tiny":  # a tiny ChatML Qwen2 written into the output folder once, and toy prompts
        from accelerate import PartialState
        from datasets import Dataset

        from llm.tiny_checkpoint import write_tiny_qwen2

        folder = Path(args.output_dir) / "tiny-qwen2"
        with PartialState().main_process_first():  # the other processes read what the main one wrote
            if not (folder / "generation_config.json").is_file():
                write_tiny_qwen2(folder)
        model = str(folder)
        data = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {i} plus 2?"}] for i in range(8)]})
        reward = length_reward
    else:
        if not script.data:
            raise SystemExit("--data is required with a real model (a JSONL / parquet of MATH problems)")
        model, data, reward = script.model, load_math(script.data), boxed_reward
    return AEntGRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=data)


def main(argv: list[str] | None = None) -> int:
    trainer = build_trainer(argv)
    trainer.train()
    if trainer.accelerator.is_main_process:  # TRL's metrics and aent's, one line per logged step
        for rec in trainer.state.log_history:
            if "clamped_entropy" in rec:
                print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
