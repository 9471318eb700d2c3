"""Agreement of llm.rewards.answers_match with the expected verdicts of math-verify's own test cases.

Data: ../shared/data/math_verify_cases/cases.jsonl (268 (gold, pred, expected) triples from the parametrized tests
of huggingface/Math-Verify; ``pred`` is the answer text). Each pair is graded by ``answers_match(pred, gold)`` with
default settings, side by side with math-verify's default ``verify(parse(gold), parse(pred))`` (the number the data
README quotes), and every disagreement is listed with its explanation.

    python benchmarks/grading_conformance.py [--data DIR] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm.rewards import answers_match  # noqa: E402


def explain(row: dict) -> str:
    """Why a case disagrees: the options its original test passed, or what the pair relies on."""
    opts = row.get("options") or {}
    if "precision" in opts:
        return (f"the original test compares with float_rounding={opts['precision']}; the default (6 decimals) "
                "keeps the rounded prediction apart from the exact gold")
    if opts.get("allow_set_relation_comp"):
        return "the original test allows comparing an inequality with a set (allow_set_relation_comp=True)"
    if opts.get("strict") is False:
        return "the original test matches variables by position (strict=False), so f(x) = f(y)"
    if "," in row["gold"] + row["pred"] and "." in row["gold"] + row["pred"] and len(row["pred"]) < 12:
        return ("a bare decimal comma: math-verify reads a bare 1,22 as 1.22 but $1,22$ as the set {1, 22}; "
                "answers_match reads every answer the LaTeX way, so that list golds such as -2,1 stay lists")
    if row["expected"] == 0:
        return ("the original test expects no match for a number split over lines inside the math delimiters; "
                "math-verify's default parse reads 9 there too, and so does answers_match")
    return "no option explains it"


def conformance(path: Path) -> dict:
    from math_verify import parse, verify

    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    t0 = time.perf_counter()
    ours = [answers_match(r["pred"], r["gold"]) for r in rows]
    seconds = time.perf_counter() - t0
    theirs = [bool(verify(parse(r["gold"]), parse(r["pred"]))) for r in rows]
    bad = [{"source": r["source"], "gold": r["gold"], "pred": r["pred"][-120:], "expected": r["expected"],
            "answers_match": o, "math_verify_default": t, "options": r.get("options"), "why": explain(r)}
           for r, o, t in zip(rows, ours, theirs) if o != bool(r["expected"])]
    n = len(rows)
    return {"file": str(path), "cases": n, "agree": n - len(bad), "agreement": (n - len(bad)) / n,
            "math_verify_default_agree": sum(t == bool(r["expected"]) for r, t in zip(rows, theirs)),
            "seconds": seconds, "disagreements": bad}


def main(argv: list[str] | None = None) -> int:
    default = Path(os.environ.get("AENT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=default, help="shared data folder holding math_verify_cases/")
    p.add_argument("--out", type=Path, default=None, help="write the full result as JSON")
    args = p.parse_args(argv)
    path = args.data / "math_verify_cases" / "cases.jsonl"
    if not path.is_file():
        print(f"error: {path} not found (set --data or AENT_SHARED_DATA)", file=sys.stderr)
        return 2
    res = conformance(path)
    print(f"cases {res['cases']}  answers_match agrees {res['agree']}/{res['cases']} = {100 * res['agreement']:.2f}%"
          f"  (math-verify default parse + verify: {res['math_verify_default_agree']}/{res['cases']}); "
          f"{res['seconds']:.1f} s")
    for d in res["disagreements"]:
        print(f"- {d['source']}  gold={d['gold']!r}  pred=...{d['pred'][-60:]!r}  expected={d['expected']}  "
              f"answers_match={d['answers_match']}  math-verify default={d['math_verify_default']}\n    why: {d['why']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
