"""Command line of the toy simulator: ``python -m toy NAME --out DIR [--smoke] [--seeds N] [options]``.

``python -m toy --help`` lists the experiments; ``python -m toy NAME --help`` lists every option of one (each
option is a field of the experiment's config dataclass, its help text the field's docstring). Every run writes
``DIR/NAME.json`` (schema: docs/toy/guide.md) and ``DIR/NAME.png`` and prints the verdicts.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from toy.experiments import EXPERIMENTS
from toy.experiments.common import Timer, result_document, save_figure, write_result
from toy.experiments.options import add_config_arguments, config_from_args, option_dests

__all__ = ["build_parser", "main", "options_markdown"]


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m toy`` parser, one sub-command per experiment."""
    parser = argparse.ArgumentParser(
        prog="python -m toy", description="Toy experiments on entropy control (AEnt, arXiv 2509.03493). Each writes "
        "NAME.json (results and verdicts) and NAME.png into --out.")
    sub = parser.add_subparsers(dest="experiment", metavar="NAME", required=True)
    for name, (module, cls) in EXPERIMENTS.items():
        p = sub.add_parser(name, help=module.SUMMARY, description=module.SUMMARY)
        p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
        p.add_argument("--smoke", action="store_true", help=f"tiny version (seconds): {cls.smoke()}")
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        p.add_argument("--threads", type=int, default=1,
                       help="torch threads (default 1: on a shared 2-core machine more threads were slower)")
        add_config_arguments(p, cls)
    return parser


def options_markdown() -> str:
    """One Markdown table per experiment: every option, its default and its help text (docs/toy/guide.md)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "experiment")
    parts = []
    for name, p in sub.choices.items():
        parts.append(f"### `python -m toy {name}`\n\n{EXPERIMENTS[name][0].SUMMARY}.\n")
        parts.append("| option | value | meaning |\n|---|---|---|")
        for action in p._actions:
            flags = [f for f in action.option_strings if f.startswith("--")]
            if not flags or flags[0] == "--help" or action.help == argparse.SUPPRESS:
                continue
            value = "" if action.nargs == 0 else (action.metavar or action.dest.upper())
            value = f"{value} ..." if action.nargs == "+" else value
            text = (action.help or "").replace("%%", "%").replace("|", "\\|")  # argparse escapes %
            parts.append(f"| {' / '.join(f'`{f}`' for f in flags)} | {value} | {text} |")
        parts.append("")
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one experiment; returns the process exit status (0 on success, 2 on a bad option)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    module, cls = EXPERIMENTS[args.experiment]
    overrides = cls.smoke() if args.smoke else {}
    given = {dest for dest in option_dests(cls) if getattr(args, dest, None) is not None}
    overrides = {k: v for k, v in overrides.items() if k not in given}  # explicit options win over --smoke
    try:
        cfg = config_from_args(cls, args, **overrides)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    timer = Timer()
    results, verdicts, fig = module.run(cfg, show_progress=not args.no_progress)
    config = {**dataclasses.asdict(cfg), "smoke": bool(args.smoke)}
    doc = result_document(args.experiment, argv[1:], config, results, verdicts, timer.elapsed)
    path = write_result(args.out, args.experiment, doc)
    png = save_figure(fig, args.out, args.experiment)
    print(f"{args.experiment}: wrote {path} and {png} in {timer.elapsed:.1f} s")
    for v in verdicts:
        print(f"  [{v['verdict']}] {v['claim']}: {v['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
