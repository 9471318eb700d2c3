"""The toy experiments, one module each, run by ``python -m toy NAME --out DIR [--smoke] [--seeds N] ...``.

Each module defines

- ``NAME``: its command-line name; ``SUMMARY``: one line for ``--help``; ``TITLE``: the heading of its section in
  the main job's report (:mod:`reproduce.report`); ``EXPECTED_S``: seconds its defaults take on one core, for the
  main job's time-left estimate only (a sixth of it under ``--smoke``);
- a frozen config dataclass (one command-line option per field, with a ``smoke()`` dict of overrides);
- ``run(cfg, show_progress) -> (results, verdicts, figure)``; ``toy.__main__`` writes ``NAME.json`` and ``NAME.png``.

:data:`EXPERIMENTS` is the one list of them: the command line, the main job (:mod:`reproduce`) and the docs read
it, so adding an experiment touches two files: its own module, and this one (its import and one registry line;
docs/toy/guide.md, "Adding a toy experiment").
"""

from __future__ import annotations

from toy.experiments import bias, dynamics, figure1

__all__ = ["EXPERIMENTS"]

# name -> (module, config class)
EXPERIMENTS = {
    figure1.NAME: (figure1, figure1.Figure1Config),
    bias.NAME: (bias, bias.BiasConfig),
    dynamics.NAME: (dynamics, dynamics.DynamicsConfig),
}
