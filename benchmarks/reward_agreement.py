"""Agreement of llm.rewards.correctness_reward with human/OpenAI `is_correct` labels on real GSM8K solutions.

Data: ../shared/data/gsm8k/example_model_solutions.jsonl (1,319 GSM8K test questions, each with four model
solutions: 6B/175B x finetuning/verification, labelled is_correct; reference answers end in ``A: n``).
Each (solution, ground_truth) pair is scored by the reward (strict extraction: the declared ``A: n`` line) and
compared with its label.

    python benchmarks/reward_agreement.py [--data DIR] [--out FILE.json] [--show N]

Prints the agreement, the confusion matrix (reward x label) and up to N disagreeing examples; `--out` also
writes all of it as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm.rewards import correctness_reward, extract_answer, reference_answer  # noqa: E402

MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def load_pairs(path: Path) -> tuple[list[str], list[str], list[bool], list[str]]:
    """(completions, references, labels, tags 'line:model') of the labelled solutions file."""
    comps, refs, labels, tags = [], [], [], []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            row = json.loads(line)
            for m in MODELS:
                if m in row:
                    comps.append(row[m]["solution"])
                    refs.append(row["ground_truth"])
                    labels.append(bool(row[m]["is_correct"]))
                    tags.append(f"{lineno}:{m}")
    return comps, refs, labels, tags


def agreement(path: Path) -> dict:
    """Agreement, confusion matrix and the disagreeing examples."""
    comps, refs, labels, tags = load_pairs(path)
    t0 = time.perf_counter()
    rewards = correctness_reward(comps, refs)
    seconds = time.perf_counter() - t0
    confusion = {"reward1_label1": 0, "reward1_label0": 0, "reward0_label1": 0, "reward0_label0": 0}
    bad = []
    for c, r, y, tag, rew in zip(comps, refs, labels, tags, rewards):
        confusion[f"reward{int(rew)}_label{int(y)}"] += 1
        if bool(rew) != y:
            bad.append({"where": tag, "label": y, "reward": rew, "extracted": extract_answer(c),
                        "reference": reference_answer(r), "completion_tail": c[-200:]})
    n = len(labels)
    return {"file": str(path), "pairs": n, "agree": n - len(bad), "agreement": (n - len(bad)) / n,
            "confusion": confusion, "seconds": seconds, "disagreements": bad}


def main(argv: list[str] | None = None) -> int:
    default = Path(os.environ.get("AENT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=default, help="shared data folder holding gsm8k/")
    p.add_argument("--out", type=Path, default=None, help="write the full result as JSON")
    p.add_argument("--show", type=int, default=20, help="print at most this many disagreements")
    args = p.parse_args(argv)
    path = args.data / "gsm8k" / "example_model_solutions.jsonl"
    if not path.is_file():
        print(f"error: {path} not found (set --data or AENT_SHARED_DATA)", file=sys.stderr)
        return 2
    res = agreement(path)
    c = res["confusion"]
    print(f"pairs {res['pairs']}  agreement {res['agree']}/{res['pairs']} = {100 * res['agreement']:.2f}%  "
          f"({res['seconds']:.2f} s)")
    print("confusion (rows: reward, columns: label)")
    print("            label=1  label=0")
    print(f"  reward=1  {c['reward1_label1']:7d}  {c['reward1_label0']:7d}")
    print(f"  reward=0  {c['reward0_label1']:7d}  {c['reward0_label0']:7d}")
    for d in res["disagreements"][: args.show]:
        print(f"- {d['where']} label={d['label']} reward={d['reward']} extracted={d['extracted']!r} "
              f"reference={d['reference']!r}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
