"""The toy experiments, one module each, run by ``python -m toy NAME --out DIR [--smoke] [--seeds N] ...``.

Each module defines ``NAME``, ``SUMMARY``, a frozen config dataclass (one command-line option per field, with a
``smoke()`` dict of overrides) and ``run(cfg, show_progress) -> (results, verdicts, figure)``; ``toy.__main__``
writes ``NAME.json`` and ``NAME.png``.
"""

from __future__ import annotations

from toy.experiments import bias, dynamics, figure1

__all__ = ["EXPERIMENTS", "bias", "dynamics", "figure1"]

# name -> (module, config class)
EXPERIMENTS = {
    figure1.NAME: (figure1, figure1.Figure1Config),
    bias.NAME: (bias, bias.BiasConfig),
    dynamics.NAME: (dynamics, dynamics.DynamicsConfig),
}
