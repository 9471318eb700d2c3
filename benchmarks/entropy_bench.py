"""Benchmark: full entropy vs our clamped entropy vs the paper's clamped-entropy algorithm, forward + backward.

What it measures, for each (dtype, number of tokens) at one vocabulary size (default Qwen2.5's 151,936):

- time: wall and CPU time (``time.thread_time`` of the one torch thread: on a shared machine it leaves out the
  time the process waits for a core) of forward + backward (``H.sum().backward()``) of ``aent.entropy``, ``aent.clamped_entropy`` and
  ``aent.reference.clamped_entropy_reference`` (topk smallest -> mask -> renormalise), in one process, the three
  interleaved within every repeat (rotating which goes first) so that they share the machine's load; the ratios are
  medians of per-repeat ratios.
- peak extra memory: each case runs once more in a fresh subprocess (with ``MALLOC_MMAP_THRESHOLD_=65536`` so that
  freed blocks leave RSS at once); peak RSS (VmHWM, reset through ``/proc/self/clear_refs``) during the run minus RSS
  once the inputs exist. It includes the gradient (the size of the logits, which any implementation must return);
  "working" is that minus the gradient's bytes. On CUDA it is ``torch.cuda.max_memory_allocated``.

- the increment inside a training step (``step_bench``): the loss of ``aent.EntropyControl`` on logits from an
  LM head, with and without clamping, forward + backward, alternated.

Targets (DESIGN.md / the issue): ours <= 1.5x the full entropy, >= 5x faster than the reference, working memory at
most one chunk. Results go to ``OUT/entropy_bench.json`` and ``OUT/entropy_bench.md``.

    python benchmarks/entropy_bench.py                       # 1,024 and 4,096 tokens, V = 151,936
    python benchmarks/entropy_bench.py --quick               # 256 tokens, 1 repeat
    python benchmarks/entropy_bench.py --quick --vocab 4096 --tokens 64 --out /tmp/b   # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aent.entropy import CHUNK_BYTES, clamped_entropy, entropy  # noqa: E402
from aent.reference import clamped_entropy_reference  # noqa: E402

IMPLS = ("full", "ours", "reference")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _fn(impl: str, clamp_p: float):
    if impl == "full":
        return lambda z: entropy(z)
    if impl == "ours":
        return lambda z: clamped_entropy(z, clamp_p)
    return lambda z: clamped_entropy_reference(z, clamp_p)


def _logits(tokens: int, vocab: int, dtype: torch.dtype, device: str, seed: int = 0) -> torch.Tensor:
    """LLM-like logits: a heavy upper tail (a few likely tokens) over a Gaussian bulk."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, vocab, generator=g) * 2.0
    x += torch.empty(tokens, vocab).exponential_(1.0, generator=g) * 1.5
    return x.to(device=device, dtype=dtype)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _run_once(fn, logits: torch.Tensor, device: str, cpu: list | None = None) -> float:
    """Wall seconds of one forward + backward; its CPU seconds (this thread) are appended to ``cpu``."""
    z = logits.detach().requires_grad_(True)
    _sync(device)
    c0, t0 = time.thread_time(), time.perf_counter()
    fn(z).sum().backward()
    _sync(device)
    if cpu is not None:
        cpu.append(time.thread_time() - c0)
    return time.perf_counter() - t0


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024.0  # kB
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset the peak RSS (VmHWM) of this process (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_case(impl: str, dtype: str, tokens: int, vocab: int, clamp_p: float, device: str) -> dict:
    """Peak extra memory of one forward + backward (run in a fresh process by :func:`_memory`)."""
    torch.set_num_threads(1)
    logits = _logits(tokens, vocab, DTYPES[dtype], device)
    grad_mb = logits.numel() * logits.element_size() / 2**20
    fn = _fn(impl, clamp_p)
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        _run_once(fn, logits, device)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        if _reset_peak():
            base = _status_mb("VmRSS")
            _run_once(fn, logits, device)
            peak = _status_mb("VmHWM") - base
        else:  # the peak since start: overestimates the baseline, so small cases read 0
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
            _run_once(fn, logits, device)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - base
    return {"peak_extra_mb": round(peak, 1), "grad_mb": round(grad_mb, 1), "working_mb": round(peak - grad_mb, 1)}


def _memory(impl: str, dtype: str, tokens: int, vocab: int, clamp_p: float, device: str) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'benchmarks')!r});"
            f"from entropy_bench import memory_case;"
            f"print(json.dumps(memory_case({impl!r}, {dtype!r}, {tokens}, {vocab}, {clamp_p}, {device!r})))")
    # Every allocation >= 64 KiB gets its own mmap, so freed memory leaves RSS at once: otherwise glibc keeps freed
    # chunk-sized blocks in its heap and RSS (not live memory) creeps up with the number of chunks processed.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(tokens_list: list[int], vocab: int, dtypes: list[str], repeats: int, clamp_p: float, device: str,
          ref_max_tokens: int, memory: bool) -> dict:
    rows, ratios = [], []
    for dtype in dtypes:
        for tokens in tokens_list:
            impls = [i for i in IMPLS if i != "reference" or tokens <= ref_max_tokens]
            logits = _logits(tokens, vocab, DTYPES[dtype], device)
            fns = {i: _fn(i, clamp_p) for i in impls}
            for i in impls:  # warm-up (allocator, lazy init) on a slice
                _run_once(fns[i], logits[: min(tokens, 8)], device)
            times: dict[str, list[float]] = {i: [] for i in impls}
            cpu: dict[str, list[float]] = {i: [] for i in impls}
            for rep in range(repeats):
                order = impls[rep % len(impls):] + impls[: rep % len(impls)]
                for i in order:
                    times[i].append(_run_once(fns[i], logits, device, cpu[i]))
                print(f"  {dtype} tokens={tokens} repeat {rep + 1}/{repeats}: "
                      + ", ".join(f"{i} {times[i][-1]:.3f}s" for i in impls), flush=True)
            del logits
            for i in impls:
                row = {"impl": i, "dtype": dtype, "tokens": tokens, "vocab": vocab,
                       "time_s_median": round(statistics.median(times[i]), 4),
                       "time_s_all": [round(t, 4) for t in times[i]],
                       "cpu_s_median": round(statistics.median(cpu[i]), 4)}
                if memory:
                    row.update(_memory(i, dtype, tokens, vocab, clamp_p, device))
                rows.append(row)
            r = {"dtype": dtype, "tokens": tokens,
                 "ours_over_full": round(statistics.median(o / f for o, f in zip(times["ours"], times["full"])), 3),
                 "ours_over_full_cpu": round(statistics.median(o / f for o, f in zip(cpu["ours"], cpu["full"])), 3)}
            if "reference" in times:
                r["reference_over_ours"] = round(
                    statistics.median(a / o for a, o in zip(times["reference"], times["ours"])), 2)
            ratios.append(r)
    return {"rows": rows, "ratios": ratios}


def to_markdown(res: dict) -> str:
    lines = ["| dtype | tokens | impl | wall s (median) | CPU s (median) | peak extra MB | gradient MB | working MB |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['dtype']} | {r['tokens']} | {r['impl']} | {r['time_s_median']:.3f} | "
                     f"{r.get('cpu_s_median', '-')} | {r.get('peak_extra_mb', '-')} | {r.get('grad_mb', '-')} | "
                     f"{r.get('working_mb', '-')} |")
    lines += ["", "| dtype | tokens | ours / full (wall) | ours / full (CPU) | reference / ours (wall) |",
              "|---|---:|---:|---:|---:|"]
    for r in res["ratios"]:
        lines.append(f"| {r['dtype']} | {r['tokens']} | {r['ours_over_full']:.2f} | {r['ours_over_full_cpu']:.2f} | "
                     f"{r.get('reference_over_ours', '-')} |")
    for r in res.get("step", []):
        lines += ["", f"Training step ({r['dtype']}, {r['tokens']} tokens, LM head {r['hidden']} x {r['vocab']}, "
                      "EntropyControl loss + backward through the head):", "",
                  "| loss | wall s (median) | CPU s (median) |", "|---|---:|---:|",
                  f"| entropy_bonus, clamp_p = 0 (no clamping) | {r['plain_s']:.3f} | {r['plain_cpu_s']:.3f} |",
                  f"| aent, clamp_p = {r['clamp_p']} | {r['aent_s']:.3f} | {r['aent_cpu_s']:.3f} |", "",
                  f"Increment of clamping inside the step: {r['aent_over_plain']:.3f}x (wall), "
                  f"{r['aent_over_plain_cpu']:.3f}x (CPU)."]
    return "\n".join(lines) + "\n"


def step_bench(tokens: int, vocab: int, hidden: int, dtype: str, repeats: int, clamp_p: float) -> dict:
    """One training step's loss through ``aent.EntropyControl``, with and without clamping, alternated.

    hidden states (1, tokens, hidden) -> LM head (hidden x vocab) -> logits -> EntropyControl.loss (PPO-clip +
    entropy term + the metrics it always computes: token log-probs, full and clamped entropy) -> backward into the
    head. "Without clamping" is method entropy_bonus with clamp_p = 0 (its metric clamped_entropy is then the full
    entropy, no selection); "with" is method aent at clamp_p. The model body is left out: it adds the same time to
    both, so this is an upper bound of the increment a real step sees.
    """
    from aent import EntropyConfig, EntropyControl

    g = torch.Generator().manual_seed(0)
    dt = DTYPES[dtype]
    h = (torch.randn(1, tokens, hidden, generator=g)).to(dt)
    w0 = (torch.randn(hidden, vocab, generator=g) * (2.0 / hidden**0.5)).to(dt)
    actions = torch.randint(0, vocab, (1, tokens), generator=g)
    old = torch.full((1, tokens), -3.0)
    adv = torch.randn(1, 1, generator=g)
    mask = torch.ones(1, tokens)
    ctrls = {"plain": EntropyControl(EntropyConfig(method="entropy_bonus", ent_coef=0.002, clamp_p=0.0)),
             "aent": EntropyControl(EntropyConfig(method="aent", clamp_p=clamp_p))}

    def run(name: str, cpu: list) -> float:
        w = w0.detach().requires_grad_(True)
        c0, t0 = time.thread_time(), time.perf_counter()
        logits = h @ w  # (1, tokens, vocab)
        ctrls[name].loss(logits=logits, actions=actions, old_logp=old, adv=adv, mask=mask).loss.backward()
        cpu.append(time.thread_time() - c0)
        return time.perf_counter() - t0

    times = {k: [] for k in ctrls}
    cpu = {k: [] for k in ctrls}
    for rep in range(repeats + 1):
        for name in (("plain", "aent") if rep % 2 else ("aent", "plain")):
            times[name].append(run(name, cpu[name]))
        print(f"  step {dtype} repeat {rep}: plain {times['plain'][-1]:.3f}s aent {times['aent'][-1]:.3f}s",
              flush=True)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}  # the first repeat is warm-up
    medc = {k: statistics.median(v[1:]) for k, v in cpu.items()}
    return {"dtype": dtype, "tokens": tokens, "vocab": vocab, "hidden": hidden, "clamp_p": clamp_p,
            "plain_s": round(med["plain"], 4), "aent_s": round(med["aent"], 4),
            "plain_cpu_s": round(medc["plain"], 4), "aent_cpu_s": round(medc["aent"], 4),
            "aent_over_plain": round(statistics.median(a / b for a, b in zip(times["aent"][1:], times["plain"][1:])), 3),
            "aent_over_plain_cpu": round(statistics.median(a / b for a, b in zip(cpu["aent"][1:], cpu["plain"][1:])), 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=str, default="1024,4096", help="comma-separated token counts")
    ap.add_argument("--vocab", type=int, default=151_936, help="vocabulary size V (Qwen2.5: 151,936)")
    ap.add_argument("--dtypes", type=str, default="fp32,bf16", help="comma-separated, from fp32,bf16")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clamp-p", type=float, default=0.33)
    ap.add_argument("--ref-max-tokens", type=int, default=1024,
                    help="skip the (slow, memory-hungry) reference above this many tokens")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-case memory subprocesses")
    ap.add_argument("--quick", action="store_true", help="256 tokens (unless --tokens is given), 1 repeat")
    ap.add_argument("--step-hidden", type=int, default=896,
                    help="hidden size of the LM head in the training-step comparison (Qwen2.5-0.5B: 896); 0 skips it")
    ap.add_argument("--step-tokens", type=int, default=1024, help="tokens of the training-step comparison")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.repeats = 1
        if "--tokens" not in (argv if argv is not None else sys.argv):
            args.tokens = "256"
    tokens_list = [int(t) for t in args.tokens.split(",")]
    dtypes = args.dtypes.split(",")
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        ap.error(f"--dtypes: unknown {bad}; allowed {sorted(DTYPES)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device available")
    res = bench(tokens_list, args.vocab, dtypes, args.repeats, args.clamp_p, args.device, args.ref_max_tokens,
                not args.no_memory)
    if args.step_hidden and args.device == "cpu":
        res["step"] = [step_bench(args.step_tokens, args.vocab, args.step_hidden, d, args.repeats, args.clamp_p)
                       for d in dtypes]
    res["meta"] = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(), "clamp_p": args.clamp_p, "repeats": args.repeats,
        "chunk_bytes": CHUNK_BYTES, "chunk_rows": max(1, CHUNK_BYTES // (4 * args.vocab)),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "entropy_bench.json").write_text(json.dumps(res, indent=2))
    md = to_markdown(res)
    (args.out / "entropy_bench.md").write_text(md)
    print(md)
    return res


if __name__ == "__main__":
    main()
