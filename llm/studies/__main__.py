"""``python -m llm.studies NAME --out DIR [--smoke] [--seeds N] [--steps N] [--config FILE] [key=value ...]``.

``exploration`` has its own command line (seed lists, levels, arms; :func:`llm.studies.exploration.exploration_main`):
``python -m llm.studies exploration [--arms A,..] [--levels L,..] [--seeds S,..] --out DIR``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    from llm.studies.registry import STUDIES

    p = argparse.ArgumentParser(prog="python -m llm study",
                                description="Entropy-dynamics studies (arXiv 2511.05993), one sweep per finding.")
    p.add_argument("name", choices=sorted([*STUDIES, "exploration"]),
                   help="which study (exploration: see `exploration --help`)")
    p.add_argument("--out", required=True, help="output folder for NAME.json, NAME.png and runs/")
    p.add_argument("--smoke", action="store_true", help="2 arms, 1 seed, 2 steps: checks the pipeline only")
    p.add_argument("--seeds", type=int, default=3, help="seeds per arm (default 3)")
    p.add_argument("--steps", type=int, default=None, help="global steps per run (default: the study's)")
    p.add_argument("--config", default="tiny", help="base trainer config: a YAML file or packaged name (default tiny)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="trainer overrides applied to every arm")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one study; prints its verdicts. User errors print one line and return 2."""
    import torch

    from llm.studies.registry import STUDIES
    from llm.studies.runner import run_study

    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["exploration"]:  # its own options (seed lists, levels, arms)
        from llm.studies.exploration import exploration_main

        return exploration_main(argv[1:])
    args = _parser().parse_intermixed_args(argv)
    if args.seeds < 1 or (args.steps is not None and args.steps < 1):
        print("error: --seeds and --steps must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    try:
        rec = run_study(STUDIES[args.name], args.out, smoke=args.smoke, seeds=args.seeds, steps=args.steps,
                        config=args.config, overrides=args.overrides, progress=not args.quiet)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for v in rec["verdicts"]:
        print(f"- [{v['verdict']}] {v['text']}")
    from llm.studies.report import record_markdown

    (Path(args.out) / f"{args.name}.md").write_text(record_markdown(rec))
    print(f"wrote {args.out}/{args.name}.json and {args.out}/{args.name}.png ({rec['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
