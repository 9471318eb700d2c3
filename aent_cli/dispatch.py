"""``aent COMMAND ...``: every command line of the project behind one console script.

Each sub-command hands the rest of its arguments to the module that owns it, imported only then, so the halves
keep their own parsers and ``python -m llm``, ``python -m toy`` and ``python -m reproduce`` keep working:

- ``aent train|eval|study|calibrate|plot|config|fields ...`` -> ``python -m llm ...`` (the GRPO trainer);
- ``aent toy NAME ...`` -> ``python -m toy NAME ...`` (``--out`` defaults to ``runs/toy/NAME``);
- ``aent reproduce ...`` -> ``python -m reproduce ...`` (the main job).

A sub-command whose extra is not installed fails with one line naming the extra to install.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

__all__ = ["COMMANDS", "Command", "main"]


@dataclass(frozen=True)
class Command:
    """One sub-command: the module whose ``main(argv)`` runs it and the arguments put in front of the user's."""

    module: str
    """Module with a ``main(argv) -> int`` function, imported when the command runs."""
    prefix: tuple[str, ...]
    """Arguments placed before the user's (the sub-command name of that module's own parser)."""
    extra: str
    """The pip extra that brings the module's dependencies (named in the error when one is missing)."""
    help: str
    """One line for ``aent --help``."""


COMMANDS: dict[str, Command] = {
    "train": Command("llm.__main__", ("train",), "llm",
                     "GRPO training with entropy control: aent train --config tiny [key=value ...]"),
    "eval": Command("llm.__main__", ("eval",), "llm", "pass@1 / pass@k / mean@k of a saved model"),
    "study": Command("llm.__main__", ("study",), "llm",
                     "entropy-dynamics studies: offpolicy, diversity, clipping, reweighting"),
    "calibrate": Command("llm.__main__", ("calibrate",), "llm",
                         "AEnt's band, box, lambda0, beta and p for a model and budget: aent calibrate --config tiny"),
    "plot": Command("llm.__main__", ("plot",), "llm", "overlay the learning curves of runs"),
    "config": Command("llm.__main__", ("config",), "llm",
                      "print a resolved trainer config; --list shows the packaged configs"),
    "fields": Command("llm.__main__", ("fields",), "llm", "markdown table of every trainer config field"),
    "toy": Command("toy.__main__", (), "toy",
                   "toy-simulator experiments: aent toy NAME [--smoke] (aent toy --help lists them)"),
    "reproduce": Command("reproduce.__main__", (), "toy,llm",
                         "the main job: toy experiments, LLM comparison, report (--smoke: about 2 minutes)"),
}
"""Sub-command name -> :class:`Command`."""


def version() -> str:
    """The installed distribution's version (the package's own when run from a bare checkout)."""
    try:
        return metadata.version("aent")
    except metadata.PackageNotFoundError:  # pragma: no cover - a checkout on sys.path without pip install
        from aent import __version__

        return __version__


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {cmd.help}" for name, cmd in COMMANDS.items()]
    return "\n".join([
        "usage: aent [--version] COMMAND [ARGS ...]",
        "",
        "Entropy control in RL for language models: the trainer, the toy simulator and the main job.",
        "",
        "commands:",
        *lines,
        "",
        "`aent COMMAND --help` shows the options of one command. Configs are files or packaged names",
        "(`aent config --list`): aent train --config tiny max_steps=5 output_dir=runs/smoke",
    ])


def _toy_args(args: list[str]) -> list[str]:
    """``aent toy NAME`` without ``--out`` writes to ``runs/toy/NAME`` (the toy parser requires the option)."""
    if not args or args[0].startswith("-") or any(a == "--help" or a == "-h" for a in args):
        return args
    if any(a == "--out" or a.startswith("--out=") for a in args):
        return args
    out = f"runs/toy/{args[0]}"
    print(f"aent toy: writing to {out} (set --out to choose)", file=sys.stderr)
    return [*args, "--out", out]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aent ARGV``; returns the exit status (2 for a usage error, as argparse does)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        print(f"aent {version()}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"aent: unknown command {name!r}{hint}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    cmd = COMMANDS[name]
    if name == "toy":
        rest = _toy_args(rest)
    try:
        module = importlib.import_module(cmd.module)
    except ImportError as err:
        extras = ",".join(dict.fromkeys(cmd.extra.split(",")))
        print(f"error: `aent {name}` needs the {extras} extra: pip install 'aent[{extras}]' ({err})", file=sys.stderr)
        return 2
    code = module.main([*cmd.prefix, *rest])
    return int(code or 0)
