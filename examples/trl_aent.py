"""GRPO with AEnt's clamped entropy and adaptive coefficient inside TRL (aent.integrations.trl).

A real run (Qwen2.5-Math-1.5B on MATH, the AEnt paper's setting; 8 GPUs, vLLM colocated with training):

    accelerate launch --num_processes 8 examples/trl_aent.py \
        --model /models/Qwen2.5-Math-1.5B --data /data/MATH/train.jsonl --output-dir runs/trl-aent

The smoke run (CPU, a tiny Qwen2 written to a temporary folder, 3 optimizer steps, no vLLM; run by the tests):

    python examples/trl_aent.py --smoke --output-dir /tmp/trl-aent-smoke

Departures from the paper's recipe: TRL's group advantages (scale_rewards="group") and its loss normalisation for
loss_type="dapo" (token mean), both documented in docs/integrations/trl.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from aent import EntropyConfig


def real_run_fields(output_dir: str) -> dict:
    """The GRPOConfig fields of a real run (8 GPUs, vLLM colocated, bf16, gradient checkpointing)."""
    cfg = EntropyConfig.aent_paper()
    return dict(
        output_dir=output_dir,
        loss_type="dapo",                          # token-mean: EntropyConfig.loss_agg = "token-mean"
        epsilon=cfg.eps_low, epsilon_high=cfg.eps_high,
        beta=0.0,                                  # no KL to a reference (AEnt paper)
        temperature=1.0,
        logging_steps=1,
        report_to="none",
        learning_rate=2e-6,                        # paper
        num_generations=16,                        # group size (paper)
        per_device_train_batch_size=16,            # one group per GPU per micro-batch
        gradient_accumulation_steps=4,             # 8 GPUs x 16 x 4 = 512 completions per optimizer step
        max_completion_length=3072,
        bf16=True,                                 # bf16 compute; aent accumulates the entropies in fp32
        gradient_checkpointing=True,
        use_vllm=True,
        vllm_mode="colocate",                      # vLLM shares the training GPUs
        vllm_gpu_memory_utilization=0.3,
        vllm_importance_sampling_correction=False,  # not expressible in aent's per-token loss (refused if True)
        max_steps=500,
        save_steps=25,
        lr_scheduler_type="constant",
        max_grad_norm=1.0,
    )


def grpo_config(output_dir: str, smoke: bool):
    """The run's GRPOConfig; smoke: the same recipe at toy size, on CPU, without vLLM."""
    from trl import GRPOConfig

    fields = real_run_fields(output_dir)
    if smoke:
        for gpu_only in ("use_vllm", "vllm_mode", "vllm_gpu_memory_utilization", "gradient_checkpointing"):
            fields.pop(gpu_only)
        fields.update(use_cpu=True, bf16=False, per_device_train_batch_size=4, num_generations=4,
                      gradient_accumulation_steps=1, max_completion_length=8, max_steps=3, learning_rate=1e-3,
                      save_strategy="no", disable_tqdm=True, seed=0)
    return GRPOConfig(**fields)


def boxed_reward(completions, answer, **kwargs) -> list[float]:
    """1.0 when the completion's last \\boxed{} equals the reference answer (the project's MATH checker)."""
    from llm.rewards import correctness_reward

    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return correctness_reward(texts, [str(a) for a in answer])


def smoke_reward(completions, **kwargs) -> list[float]:
    """A reward a random tiny model can earn differently within a group (completion length mod 3)."""
    return [float(len(c[0]["content"]) % 3) for c in completions]


def load_math(path: str):
    """A JSONL / parquet of MATH problems as a conversational dataset, read by the project's loader (it recognises
    question / problem fields and takes the answer from answer fields or a solution's last \\boxed{})."""
    from datasets import Dataset

    from llm.data import load_problems

    return Dataset.from_list([{"prompt": [{"role": "user", "content": p.question}], "answer": str(p.answer)}
                              for p in load_problems(path)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (hub layout), e.g. /models/Qwen2.5-Math-1.5B")
    p.add_argument("--data", help="JSONL / parquet of MATH problems (problem or question; answer or solution)")
    p.add_argument("--output-dir", required=True, help="TRL output folder (checkpoints, logs)")
    p.add_argument("--smoke", action="store_true", help="tiny local model, CPU, 3 steps (what the tests run)")
    a = p.parse_args(argv)
    from datasets import Dataset

    from aent.integrations.trl import AEntGRPOTrainer

    if a.smoke:
        from llm.tiny_checkpoint import write_tiny_qwen2

        model = str(write_tiny_qwen2(Path(tempfile.mkdtemp(prefix="tiny-qwen2-"))))
        data = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"What is {i} plus 2?"}] for i in range(8)]})
        reward, entropy = smoke_reward, EntropyConfig.aent_paper().replace(warmup=0)
    else:
        if not a.model or not a.data:
            p.error("--model and --data are required without --smoke")
        model, data, reward, entropy = a.model, load_math(a.data), boxed_reward, EntropyConfig.aent_paper()
    trainer = AEntGRPOTrainer(model=model, reward_funcs=reward, args=grpo_config(a.output_dir, a.smoke),
                              train_dataset=data, entropy_config=entropy)
    trainer.train()
    for rec in trainer.state.log_history:
        if "ent_coef" in rec:
            print(json.dumps({k: rec[k] for k in ("step", "reward", "entropy", "clamped_entropy", "ent_coef")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
