"""Benchmark: policy loss from hidden states, chunked (``chunked_policy_terms``) and fused vs materialised logits.

Both paths compute, for N tokens with hidden states h (N, d) and an LM head W (V, d), the per-token logp, entropy
and clamped entropy (p = 0.33) and back-propagate L = sum_t (u1_t logp_t + u2_t H_t + u3_t H~_t) with fixed random
u (every output receives a gradient) to h and W:

- materialised: ``logits = h @ W.T`` (N, V), then ``aent.token_logprobs``, ``aent.entropy``,
  ``aent.clamped_entropy`` (the path of the native trainer and the TRL adapter before issue 28);
- chunked: ``aent.chunked_policy_terms(h, W, tokens, clamp=0.33)`` (default chunk size): per-token outputs,
  logits recomputed in backward (four N x d x V matmuls);
- fused: ``aent.chunked_policy_loss(h, W, tokens, token_loss, clamp=0.33)`` with token_loss the same sum (default
  chunk size): the gradient formed in forward, chunk by chunk (three matmuls, as the materialised path).

Each (path, dtype) case runs in its own fresh subprocess, one after the other, so the paths never compete for
memory; the parent compares their outputs. What is reported:

- peak extra memory: peak RSS (VmHWM, reset through ``/proc/self/clear_refs`` once the inputs exist) minus RSS at
  that moment, with ``MALLOC_MMAP_THRESHOLD_=65536`` so freed blocks leave RSS at once. "total" includes the
  gradients dL/dh and dL/dW, which every implementation must return (for W that is V x d, the size of W itself);
  "working" is total minus the gradients' bytes: the memory the loss itself needs. The target (<= 1/8 of the
  materialised path) is judged on both and both are printed.
- time: wall time of forward + backward, after a warm-up call on 8 tokens (kernels, thread pool), median of
  ``--repeats`` (default 1 at full size: one repeat of the materialised fp32 case takes minutes on 2 cores).
- agreement: ||a - b|| / ||b|| for logp, H, H~ (per token), the loss L, and dL/dh, dL/dW. fp32: chunked and fused
  against materialised fp32 (target 1e-5). bf16: each bf16 path against materialised fp32 (target: the chunked
  and fused errors at most the materialised bf16 path's own, up to a relative 1e-6 for the rounding of the error
  itself; the loss, a sum of terms with signs, is printed but not judged).

Inputs: h ~ N(0, 1), W ~ N(0, (3 / sqrt(d))^2) (logits with standard deviation about 3, entropies of a few nats),
tokens uniform; bf16 cases round the same fp32 inputs.

    python benchmarks/chunked_loss_bench.py                   # N = 4,096, V = 151,936, d = 1,536 (10-15 GB peak)
    python benchmarks/chunked_loss_bench.py --small           # N = 512, V = 32,768, d = 512, chunk 64: a minute
    nice -n 10 python benchmarks/chunked_loss_bench.py --threads 2 --out benchmarks/results
    python benchmarks/chunked_loss_bench.py --interleaved --tokens 512 --repeats 3 --threads 1   # time only

Sequential cases on a shared machine see different loads (two full runs here gave chunked / materialised wall
times of 0.92 and 1.36 in fp32), and with 2 threads on a loaded 2-core machine every small operation waits in
OpenMP barriers for a thread that is not running (the same elementwise work took 25x longer with 2 threads than
with 1 at load average 5). So ``--interleaved`` times the three paths alternately in one process, at fewer tokens
(all paths' memory must fit at once), and reports CPU time beside wall time; run it with ``--threads 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aent  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
PATHS = ("materialised", "chunked", "fused")
CLAMP = 0.33
NAMES = ("logp", "entropy", "clamped_entropy", "loss", "grad_hidden", "grad_weight")


# ----------------------------------------------------------------------------------------------- child side
def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _inputs(n: int, vocab: int, d: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, d, generator=g).to(dtype).requires_grad_()
    weight = torch.randn(vocab, d, generator=g).mul_(3.0 / d**0.5).to(dtype).requires_grad_()
    tokens = torch.randint(0, vocab, (n,), generator=g)
    upstream = torch.randn(3, n, generator=g)
    return hidden, weight, tokens, upstream


def _step(path: str, hidden, weight, tokens, upstream, chunk_size=None):
    """Forward + backward of L = sum_t u_t . (logp_t, H_t, H~_t); returns the detached (logp, H, H~, L)."""
    hidden.grad = weight.grad = None
    if path == "fused":
        out = aent.chunked_policy_loss(hidden, weight, tokens, lambda lp, h, hc, rows: (
            upstream[0, rows] * lp + upstream[1, rows] * h + upstream[2, rows] * hc), clamp=CLAMP,
            chunk_size=chunk_size)
        out.loss.backward()
        return (*out.terms, out.loss.detach())
    if path == "chunked":
        terms = tuple(aent.chunked_policy_terms(hidden, weight, tokens, clamp=CLAMP, chunk_size=chunk_size))
    else:
        logits = hidden @ weight.t()  # (N, V)
        terms = (aent.token_logprobs(logits, tokens), aent.entropy(logits), aent.clamped_entropy(logits, CLAMP))
    loss = sum((u * t).sum() for u, t in zip(upstream, terms))
    loss.backward()
    return (*(t.detach() for t in terms), loss.detach())


def child(args) -> None:
    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    small = _inputs(8, args.vocab, args.hidden, dtype, seed=1)
    _step(args.path, *small)  # warm-up: kernels and thread pool, on 8 tokens
    del small
    hidden, weight, tokens, upstream = _inputs(args.tokens, args.vocab, args.hidden, dtype)
    times, peaks, base = [], [], 0
    for _ in range(args.repeats):
        hidden.grad = weight.grad = None
        base = _rss_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        start = time.perf_counter()
        terms = _step(args.path, hidden, weight, tokens, upstream, args.chunk_size)
        times.append(time.perf_counter() - start)
        peaks.append(_rss_kib("VmHWM") - base)
    grad_bytes = hidden.grad.numel() * hidden.grad.element_size() + weight.grad.numel() * weight.grad.element_size()
    torch.save(dict(zip(NAMES, [*terms, hidden.grad, weight.grad])), args.save)
    print(json.dumps({"time_s": statistics.median(times), "times_s": times, "peak_extra_mib": max(peaks) / 1024,
                      "grad_mib": grad_bytes / 2**20, "rss_inputs_mib": base / 1024}))


# ---------------------------------------------------------------------------------------------- parent side
def _run_case(args, path: str, dtype: str, save: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", path, "--dtype", dtype, "--save", str(save),
           "--tokens", str(args.tokens), "--vocab", str(args.vocab), "--hidden", str(args.hidden),
           "--threads", str(args.threads), "--repeats", str(args.repeats)]
    if args.chunk_size:
        cmd += ["--chunk-size", str(args.chunk_size)]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"case {path} {dtype} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["working_mib"] = out["peak_extra_mib"] - out["grad_mib"]
    print(f"  {dtype} {path:>12}: {out['time_s']:7.2f} s, peak extra {out['peak_extra_mib']:8.0f} MiB "
          f"(working {out['working_mib']:8.0f} MiB)", flush=True)
    return out


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def _agreement(saved: dict) -> dict:
    load = {key: torch.load(p) for key, p in saved.items()}
    out = {}
    for path in PATHS[1:]:
        if ("materialised", "fp32") in load and (path, "fp32") in load:
            ref, got = load["materialised", "fp32"], load[path, "fp32"]
            out[f"fp32 {path} vs materialised"] = {n: _rel(got[n], ref[n]) for n in NAMES}
    if ("materialised", "fp32") in load:
        ref = load["materialised", "fp32"]
        for path in PATHS:
            if (path, "bf16") in load:
                out[f"bf16 {path} vs fp32 materialised"] = {n: _rel(load[path, "bf16"][n], ref[n]) for n in NAMES}
    return out


def _verdicts(cases: dict, agree: dict) -> dict:
    out = {}
    judged = [n for n in NAMES if n != "loss"]
    for path in PATHS[1:]:
        for dtype in DTYPES:
            mat, chk = cases.get(("materialised", dtype)), cases.get((path, dtype))
            if mat and chk:
                out[f"{dtype} {path} memory total <= 1/8"] = chk["peak_extra_mib"] <= mat["peak_extra_mib"] / 8
                out[f"{dtype} {path} memory working <= 1/8"] = chk["working_mib"] <= mat["working_mib"] / 8
                out[f"{dtype} {path} time <= 1.2x"] = chk["time_s"] <= 1.2 * mat["time_s"]
        if f"fp32 {path} vs materialised" in agree:
            out[f"fp32 {path} agreement <= 1e-5"] = max(agree[f"fp32 {path} vs materialised"].values()) <= 1e-5
        mine = agree.get(f"bf16 {path} vs fp32 materialised")
        theirs = agree.get("bf16 materialised vs fp32 materialised")
        if mine and theirs:
            # "within": up to the rounding of the error itself (equal logits give errors equal to ~1e-8 relative)
            out[f"bf16 {path} agreement <= materialised bf16 error"] = all(
                mine[n] <= theirs[n] * (1 + 1e-6) for n in judged)
    return out


def interleaved(args) -> dict:
    """Time only: the paths alternately in this one process, ``--repeats`` rounds each (which goes first rotates),
    wall and process CPU time (``time.process_time``: all threads, less sensitive to other jobs than wall time);
    the ratio is the median of the per-round ratios."""
    torch.set_num_threads(args.threads)
    out = {}
    for dtype in [d for d in args.dtypes.split(",") if d]:
        inputs = _inputs(args.tokens, args.vocab, args.hidden, DTYPES[dtype])
        for path in PATHS:  # warm-up
            _step(path, *_inputs(8, args.vocab, args.hidden, DTYPES[dtype], seed=1))
        rounds = []
        for r in range(args.repeats):
            one = {}
            for path in PATHS[r % 3:] + PATHS[:r % 3]:  # which path goes first rotates
                wall, cpu = time.perf_counter(), time.process_time()
                _step(path, *inputs, args.chunk_size)
                one[path] = (time.perf_counter() - wall, time.process_time() - cpu)
            rounds.append(one)
            print(f"  {dtype} round {r}: " + ", ".join(f"{p} {w:.1f} s wall / {c:.1f} s cpu"
                                                      for p, (w, c) in one.items()), flush=True)
        out[dtype] = {"wall_s": {p: [o[p][0] for o in rounds] for p in PATHS},
                      "cpu_s": {p: [o[p][1] for o in rounds] for p in PATHS}}
        for path in PATHS[1:]:
            for i, kind in enumerate(("wall", "cpu")):
                ratio = statistics.median(o[path][i] / o["materialised"][i] for o in rounds)
                out[dtype][f"{path}_{kind}_ratio"] = ratio
            print(f"{dtype}: {path} / materialised time, median of {args.repeats} rounds: wall "
                  f"{out[dtype][f'{path}_wall_ratio']:.2f}, cpu {out[dtype][f'{path}_cpu_ratio']:.2f}", flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        record = {"tokens": args.tokens, "vocab": args.vocab, "hidden": args.hidden, "threads": args.threads,
                  "repeats": args.repeats, "date": time.strftime("%Y-%m-%d", time.gmtime()), "timing": out}
        (args.out / "chunked_loss_timing.json").write_text(json.dumps(record, indent=1) + "\n")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=151_936)
    ap.add_argument("--hidden", type=int, default=1536)
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--chunk-size", type=int, default=None, help="chunked path's chunk (default: automatic)")
    ap.add_argument("--small", action="store_true", help="N = 512, V = 32,768, d = 512, chunk 64 (a minute)")
    ap.add_argument("--out", type=Path, default=None, help="folder for chunked_loss_bench.json")
    ap.add_argument("--interleaved", action="store_true",
                    help="time only, the paths alternately in one process (use a smaller --tokens)")
    ap.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.path = args.child
        return child(args)
    if args.small:
        args.tokens, args.vocab, args.hidden = 512, 32_768, 512
        args.chunk_size = args.chunk_size or 64  # the automatic chunk would hold all 512 rows
    if args.interleaved:
        print(f"interleaved timing: N={args.tokens} V={args.vocab} d={args.hidden} threads={args.threads}")
        interleaved(args)
        return None
    dtypes = [d for d in args.dtypes.split(",") if d]
    print(f"N={args.tokens} V={args.vocab} d={args.hidden} clamp={CLAMP} chunk={args.chunk_size or 'auto'} "
          f"threads={args.threads} "
          f"torch {torch.__version__} {platform.machine()}", flush=True)
    cases, saved = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ["fp32"] + [d for d in dtypes if d != "fp32"]:  # fp32 first: the bf16 cases' reference
            for path in PATHS:
                saved[path, dtype] = Path(tmp) / f"{path}_{dtype}.pt"
                cases[path, dtype] = _run_case(args, path, dtype, saved[path, dtype])
        agree = _agreement(saved)
    verdicts = _verdicts(cases, agree)
    for dtype in dtypes:
        mat = cases["materialised", dtype]
        for path in PATHS[1:]:
            chk = cases[path, dtype]
            total = mat["peak_extra_mib"] / max(chk["peak_extra_mib"], 1e-9)
            print(f"{dtype} {path}: memory ratio total {total:.1f}x, working {mat['working_mib'] / max(chk['working_mib'], 1e-9):.1f}x less; time {path} / "
                  f"materialised {chk['time_s'] / max(mat['time_s'], 1e-9):.2f}")
    for name, errs in agree.items():
        print(f"{name}: " + ", ".join(f"{n} {v:.2e}" for n, v in errs.items()))
    for name, ok in verdicts.items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        record = {"tokens": args.tokens, "vocab": args.vocab, "hidden": args.hidden, "clamp": CLAMP,
                  "chunk_size": args.chunk_size,
                  "threads": args.threads, "torch": torch.__version__, "machine": platform.machine(),
                  "date": time.strftime("%Y-%m-%d", time.gmtime()),
                  "cases": {f"{p} {d}": v for (p, d), v in cases.items()}, "agreement": agree, "targets": verdicts}
        (args.out / "chunked_loss_bench.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
