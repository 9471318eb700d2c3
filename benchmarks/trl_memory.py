"""Peak extra memory and time of one AEntGRPOTrainer micro-batch (loss + backward), chunked path vs materialised logits.

    python benchmarks/trl_memory.py                       # 2 x 1,024 completion tokens, V = 151,936, d = 1,536, fp32
    python benchmarks/trl_memory.py --rows 4 --tokens 1024 --dtype bfloat16

The policy is a one-layer Qwen2 with Qwen2.5-Math-1.5B's vocabulary and hidden size (tied embeddings), so the LM
head dominates as it does in the real model. Each path runs in its own process (CPU: peak resident set from
/proc/self/status VmHWM, reset through /proc/self/clear_refs just before the step; CUDA: torch's peak allocated),
after one warm-up step; "extra" is that peak minus the memory held before the step (model, optimizer-free).
Prints one line per path and the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _one(path: str, rows: int, tokens: int, dtype: str, device: str) -> dict:
    import warnings

    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from aent.integrations.trl import AEntGRPOConfig, AEntGRPOTrainer
    from llm.tiny_checkpoint import write_tiny_qwen2

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=151936, hidden_size=1536, num_hidden_layers=1, num_attention_heads=12,
                      num_key_value_heads=2, intermediate_size=256, max_position_embeddings=4096,
                      tie_word_embeddings=True)
    model = Qwen2ForCausalLM(cfg).to(getattr(torch, dtype))
    tok = AutoTokenizer.from_pretrained(write_tiny_qwen2(Path(tempfile.mkdtemp())))
    args = AEntGRPOConfig(output_dir=tempfile.mkdtemp(), use_cpu=device == "cpu", bf16=False, report_to="none",
                          per_device_train_batch_size=rows, num_generations=2, loss_type="dapo",
                          aent_preset="aent", disable_tqdm=True)
    data = Dataset.from_dict({"prompt": ["x"] * 8})
    tr = AEntGRPOTrainer(model=model, processing_class=tok, reward_funcs=lambda completions, **k: [0.0] * len(
        completions), args=args, train_dataset=data)
    tr.aent_head = path
    tr.current_gradient_accumulation_steps = 1
    dev = tr.model.device
    g = torch.Generator().manual_seed(0)
    batch = {"prompt_ids": torch.randint(0, cfg.vocab_size, (rows, 16), generator=g).to(dev),
             "prompt_mask": torch.ones(rows, 16, dtype=torch.long, device=dev),
             "completion_ids": torch.randint(0, cfg.vocab_size, (rows, tokens), generator=g).to(dev),
             "completion_mask": torch.ones(rows, tokens, dtype=torch.long, device=dev),
             "advantages": torch.randn(rows, generator=g).to(dev),
             "num_items_in_batch": torch.tensor(rows * tokens, device=dev)}
    tr.model.train()

    def step():
        tr.model.zero_grad(set_to_none=False)  # gradient buffers are held, as in training
        tr.compute_loss(tr.model, dict(batch)).backward()

    step()  # warm-up: gradients of the parameters exist from here on, as in training
    if dev.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
        base = _rss_kib("VmRSS") * 1024
    t0 = time.perf_counter()
    step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _rss_kib("VmHWM") * 1024
    return {"path": path, "seconds": time.perf_counter() - t0, "extra_bytes": peak - base}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2, help="completions in the micro-batch")
    p.add_argument("--tokens", type=int, default=1024, help="completion tokens per row")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--one", choices=["chunked", "logits"], help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(_one(a.one, a.rows, a.tokens, a.dtype, a.device)))
        return 0
    res = {}
    for path in ("logits", "chunked"):
        out = subprocess.run([sys.executable, __file__, "--one", path, "--rows", str(a.rows), "--tokens",
                              str(a.tokens), "--dtype", a.dtype, "--device", a.device],
                             capture_output=True, text=True, check=True)
        res[path] = json.loads(out.stdout.strip().splitlines()[-1])
        r = res[path]
        print(f"{path:8s} {a.rows} x {a.tokens} tokens, V 151,936, d 1,536, {a.dtype}, {a.device}: peak extra "
              f"{r['extra_bytes'] / 2**30:.2f} GiB, {r['seconds']:.1f} s (loss + backward)")
    ratio = res["chunked"]["extra_bytes"] / res["logits"]["extra_bytes"]
    print(f"chunked / logits: memory {ratio:.3f}, time {res['chunked']['seconds'] / res['logits']['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
