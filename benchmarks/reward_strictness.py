"""How often the strict reward differs from the old lenient one on the CPU default's own text.

The strict reward (llm.rewards.correctness_reward, declared answers only) replaced a reward that fell back to the
last number in the text. This script scores, with both, (1) the warm-start corpus of ``configs/tiny.yaml``
(the supervised targets of the ``plain`` template: worked solutions and bare ``#### n`` answers) and (2) real
rollouts of the warm-started default policy (group size and temperature of the config) on its test problems,
and prints how many rewards differ and examples of each kind of difference.

    python benchmarks/reward_strictness.py [--config configs/tiny.yaml] [--prompts 64] [--out FILE.json]

The old reward is the code of ``llm/rewards.py`` and ``llm/math_equiv.py`` at commit 6844193 (before the strict
extraction), loaded from git, so this script needs the git history of the checkout. Building the warm-started
policy takes a few minutes on a 2-core CPU the first time; it is cached under $AENT_CACHE (~/.cache/aent).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OLD_COMMIT = "6844193"


def old_reward_module():
    """The pre-strict llm.rewards (with its llm.math_equiv) as a module, loaded from git."""
    tmp = Path(tempfile.mkdtemp(prefix="old_rewards_"))
    (tmp / "oldllm").mkdir()
    (tmp / "oldllm" / "__init__.py").write_text("")
    for name in ("rewards", "math_equiv"):
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:llm/{name}.py"], check=True,
                             capture_output=True, text=True).stdout
        (tmp / "oldllm" / f"{name}.py").write_text(src.replace("from llm.math_equiv", "from oldllm.math_equiv"))
    sys.path.insert(0, str(tmp))
    spec = importlib.util.find_spec("oldllm.rewards")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare(texts: list[str], answers: list[str], old) -> dict:
    from llm.rewards import correctness_reward

    new = correctness_reward(texts, answers)
    was = old.correctness_reward(texts, answers)
    kinds = {"old1_new0": [], "old0_new1": []}
    for t, a, n, o in zip(texts, answers, new, was):
        if n != o:
            kinds[f"old{int(o)}_new{int(n)}"].append({"answer": a, "text": t})
    return {"n": len(texts), "new_mean": sum(new) / len(new), "old_mean": sum(was) / len(was),
            "differ": len(kinds["old1_new0"]) + len(kinds["old0_new1"]),
            "old1_new0": len(kinds["old1_new0"]), "old0_new1": len(kinds["old0_new1"]),
            "examples": {k: v[:8] for k, v in kinds.items()}}


def rollouts(cfg, n_prompts: int) -> tuple[list[str], list[str]]:
    """Completions of the warm-started default policy on its test problems, sampled as in training."""
    from llm.data import format_prompts
    from llm.generate import generate
    from llm.policy import build_policy
    from llm.problems import load_problems

    train_set, test_set = load_problems(cfg)
    model, tokenizer = build_policy(cfg.model, cfg.data, train_set, cache_dir=cfg.cache_dir)
    problems = (test_set or train_set)[:n_prompts]
    r = cfg.rollout
    s = generate(model, tokenizer, format_prompts(problems, cfg.data.template, tokenizer), n=r.group_size,
                 temperature=r.temperature, top_p=r.top_p, max_new_tokens=r.max_new_tokens, seed=cfg.seed,
                 max_prompt_len=cfg.data.max_prompt_len, batch_size=64)
    answers = [p.answer for p in problems for _ in range(r.group_size)]
    return list(s.texts), answers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"), help="training config (YAML)")
    p.add_argument("--prompts", type=int, default=64, help="test problems to sample (x group_size completions)")
    p.add_argument("--out", type=Path, default=None, help="write the full result as JSON")
    args = p.parse_args(argv)

    from llm.config import load_config
    from llm.data import format_target
    from llm.problems import load_problems

    cfg = load_config(args.config)
    old = old_reward_module()
    train_set, _ = load_problems(cfg)  # its solutions are already the two-style warm-start corpus
    res = {"config": args.config, "old_commit": OLD_COMMIT,
           "warm_start_corpus": compare([format_target(q, cfg.data.template) for q in train_set],
                                        [q.answer for q in train_set], old)}
    t0 = time.perf_counter()
    texts, answers = rollouts(cfg, args.prompts)
    res["rollouts"] = compare(texts, answers, old)
    res["rollouts"]["seconds"] = time.perf_counter() - t0
    for name in ("warm_start_corpus", "rollouts"):
        r = res[name]
        print(f"{name:18s} n={r['n']:5d}  reward mean new {r['new_mean']:.4f} old {r['old_mean']:.4f}  "
              f"differ {r['differ']} ({100 * r['differ'] / r['n']:.2f}%): old 1 -> new 0: {r['old1_new0']}, "
              f"old 0 -> new 1: {r['old0_new1']}")
        for kind, rows in r["examples"].items():
            for row in rows[:3]:
                print(f"  {kind} answer={row['answer']!r} text={row['text'][-80:]!r}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
