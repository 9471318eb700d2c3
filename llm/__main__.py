"""Command line of the LLM half: ``aent {train,eval,study,calibrate,plot,config,fields} ...`` (or ``python -m llm ...``).

``--config`` takes a YAML file or the name of a packaged config (``tiny``, ``aent_qwen2.5_math_1.5b``; the list:
``aent config --list``). Examples::

    aent train --config tiny max_steps=5 output_dir=runs/smoke
    aent train --config tiny entropy.method=aent --resume
    aent train --config tiny --resume max_steps=40   # overrides may also follow the flags
    aent train --config tiny output_dir=runs/smoke --overwrite   # replace the run already there
    accelerate launch --config_file configs/accelerate/fsdp_8gpu.yaml -m llm train \\
        --config aent_qwen2.5_math_1.5b model.path=/models/Qwen2.5-Math-1.5B
    aent eval --model runs/tiny/final --task arithmetic --n 64 --samples 4
    aent study reweighting --out runs/studies --seeds 3   # arXiv 2511.05993's findings
    aent study exploration --arms grpo --levels 1 --seeds 4242 --out runs/explore  # the exploration trap
    aent calibrate --config tiny    # AEnt's band, box, lambda0, beta, p for this model and budget
    aent plot runs/aent runs/none --out curves.png
    aent config --list              # the packaged configs
    aent fields                     # markdown table of every config field
"""

from __future__ import annotations

import argparse
import errno
import sys

from llm.plot import PLOT_KEYS

_USER_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR}


def _parser(prog: str = "python -m llm") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{train,eval,study,calibrate,plot,config,fields}")

    t = sub.add_parser("train", help="GRPO training with entropy control (any launcher: python or accelerate)")
    t.add_argument("--config", required=True,
                   help="YAML file or packaged config name (tiny, aent_qwen2.5_math_1.5b; see `config --list`)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in output_dir from its newest intact checkpoint (same config required, "
                        "except max_steps, logging, saving and evaluation fields)")
    t.add_argument("--overwrite", action="store_true",
                   help="delete the run already in output_dir first (without --resume or --overwrite a folder "
                        "holding a run is refused)")
    t.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides: max_steps=5 output_dir=runs/x entropy.method=aent rollout.group_size=16")

    c = sub.add_parser("config", help="print the resolved config (file + overrides) as YAML; --list: packaged configs")
    c.add_argument("--config", default=None, help="YAML file or packaged config name (defaults when omitted)")
    c.add_argument("--list", action="store_true", help="list the packaged configs (usable as --config NAME) and exit")
    c.add_argument("overrides", nargs="*", metavar="key=value")

    sub.add_parser("study", add_help=False,
                   help="entropy-dynamics study: offpolicy, diversity, clipping, reweighting, exploration "
                        "(see `study --help`)")
    sub.add_parser("calibrate", add_help=False,
                   help="propose AEnt's band, box, lambda0, beta and p for this model and budget (see `calibrate --help`)")
    sub.add_parser("fields", help="print the markdown table of every config field (generated from docstrings)")

    e = sub.add_parser("eval", help="pass@1 / pass@k / mean@k of a saved model (llm.evaluate; see its --help)",
                       add_help=False)
    e.add_argument("args", nargs=argparse.REMAINDER, help="arguments of python -m llm.evaluate")

    pl = sub.add_parser("plot", help="overlay learning curves of one or more runs")
    pl.add_argument("runs", nargs="+", metavar="RUN_DIR",
                    help="run folders holding metrics.jsonl; folders named NAME-seedK are drawn as mean +- std")
    pl.add_argument("--out", required=True, help="output PNG")
    pl.add_argument("--keys", nargs="+", default=PLOT_KEYS, help=f"metrics to plot (default {' '.join(PLOT_KEYS)})")
    pl.add_argument("--title", default=None)
    return p


def _train(args) -> int:
    from llm.config import load_config
    from llm.train import train

    overrides = list(args.overrides) + (["resume=true"] if args.resume else []) + \
        (["overwrite=true"] if args.overwrite else [])
    cfg = load_config(args.config, overrides)
    try:
        train(cfg)
    except (OSError, RuntimeError) as err:
        from llm.runfolder import disk_full_error

        clean = disk_full_error(err, "the run's files", cfg.output_dir)
        if clean is err:
            raise
        raise clean from err
    return 0


def _eval(args) -> int:
    from llm.evaluate import eval_main

    return eval_main(list(args.args))


def _plot(args) -> int:
    from llm.plot import plot_runs

    out = plot_runs(args.runs, args.out, keys=args.keys, title=args.title)
    print(f"wrote {out}")
    return 0


def _invoked_as_aent() -> bool:
    """True under the ``aent`` console script, so help and usage lines show the command the user typed."""
    from pathlib import Path

    return Path(sys.argv[0]).name == "aent"


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors (bad config, missing file) print one line and exit with status 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["eval"]:  # everything after `eval` belongs to llm.evaluate's parser (incl. --help)
        return _eval(argparse.Namespace(args=argv[1:]))
    if argv[:1] == ["study"]:  # everything after `study` belongs to llm.studies' parser (incl. --help)
        from llm.studies import study_main

        return study_main(argv[1:])
    if argv[:1] == ["calibrate"]:  # everything after `calibrate` belongs to llm.calibrate's parser
        from llm.calibrate_cli import calibrate_main

        try:
            return calibrate_main(argv[1:])
        except (ValueError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    parser = _parser("aent" if _invoked_as_aent() else "python -m llm")
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value after a flag (`train --config tiny --resume max_steps=9`) is an override like the others
        if args.cmd in ("train", "config") and all("=" in x and not x.startswith("-") for x in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)} (overrides are key=value, e.g. max_steps=5; "
                         f"flags of `{args.cmd}`: see `{parser.prog} {args.cmd} --help`)")
    try:
        if args.cmd == "train":
            return _train(args)
        if args.cmd == "eval":
            return _eval(args)
        if args.cmd == "plot":
            return _plot(args)
        if args.cmd == "config" and args.list:
            import aent_configs

            for name in aent_configs.names():
                print(f"{name:<34} {aent_configs.path(name)}")
            return 0
        if args.cmd == "config":
            import yaml

            from llm.config import load_config

            print(yaml.safe_dump(load_config(args.config, args.overrides).to_dict(), sort_keys=False), end="")
            return 0
        if args.cmd == "fields":
            from llm.config_docs import field_table

            print(field_table())
            return 0
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # permissions, read-only file systems: the OS message names the path
        if err.errno not in _USER_ERRNOS:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; resume with the same command plus --resume", file=sys.stderr)
        return 130
    except BaseException as err:  # Preempted is a BaseException (llm.preempt says why)
        from llm.preempt import Preempted

        if not isinstance(err, Preempted):
            raise
        print(str(err), file=sys.stderr)
        return err.exit_code
    return 1


if __name__ == "__main__":
    sys.exit(main())
