"""Wall time of correctness_reward on a batch of answers that make the symbolic grader slow.

A policy can write answers that keep sympy busy for seconds (power towers, factorials of huge numbers, long sums).
This script builds a batch of such completions (64 by default, cycling through the kinds below), grades it with
``llm.rewards.correctness_reward`` (an alarm of timeout_s per answer, no shared budget) and, for comparison, grades a few of
them with math-verify's own defaults (a 5 s parse and a 5 s verify timeout per answer, no shared budget).
The normal case for contrast: the 500 reference solutions of MATH-500 graded against their gold answers in batches
of the same size (time per batch, and how many score 1: extraction and grading on real LaTeX answers).

    python benchmarks/grading_time.py [--batch 64] [--plain 3] [--data DIR] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm.rewards import correctness_reward  # noqa: E402

SLOW = {
    "power tower": "9^{9^{9^{9^{9}}}}",
    "factorial": "(10^{10})!",
    "huge power": "2^{10^{8}}",
    "long sum": "+".join(f"x_{{{i}}}^{{{i}}}" for i in range(300)),
    "nested fractions": "\\frac{1}{" * 40 + "2" + "}" * 40,
}
GOLD = "x^2+1"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64, help="completions in the graded batch")
    p.add_argument("--plain", type=int, default=3, help="answers graded with math-verify's defaults for comparison")
    p.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    p.add_argument("--data", type=Path, help="shared data folder holding math_bench/math500.jsonl",
                   default=Path(os.environ.get("AENT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")))
    args = p.parse_args(argv)
    kinds = list(SLOW)
    comps = [f"So the answer is \\boxed{{{SLOW[kinds[i % len(kinds)]]}}}." for i in range(args.batch)]
    correctness_reward(["\\boxed{\\frac{1}{2}}"], ["0.5"])  # imports and warms up math-verify, as a trainer's step 1
    t0 = time.perf_counter()
    rewards = correctness_reward(comps, [GOLD] * len(comps))
    batch_s = time.perf_counter() - t0
    res = {"batch": args.batch, "batch_seconds": batch_s, "rewards_sum": sum(rewards), "plain": {}}
    print(f"correctness_reward, {args.batch} slow answers: {batch_s:.2f} s (all scored {set(rewards)})")
    if args.plain:
        from math_verify import parse, verify

        for kind in kinds[: args.plain]:
            t0 = time.perf_counter()
            verify(parse(f"${GOLD}$"), parse(f"${SLOW[kind]}$"))
            res["plain"][kind] = time.perf_counter() - t0
            print(f"math-verify defaults, one {kind}: {res['plain'][kind]:.2f} s")
    math500 = args.data / "math_bench" / "math500.jsonl"
    if math500.is_file():
        rows = [json.loads(line) for line in math500.open(encoding="utf-8")]
        times, correct = [], 0
        for i in range(0, len(rows), args.batch):
            chunk = rows[i : i + args.batch]
            t0 = time.perf_counter()
            correct += sum(correctness_reward([r["solution"] for r in chunk], [r["answer"] for r in chunk]))
            times.append(time.perf_counter() - t0)
        res["math500"] = {"n": len(rows), "correct": correct, "batch_seconds": times}
        print(f"MATH-500 reference solutions vs their answers: {int(correct)}/{len(rows)} score 1; seconds per batch "
              f"of {args.batch}: median {sorted(times)[len(times) // 2]:.2f}, max {max(times):.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
