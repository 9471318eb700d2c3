"""The ``aent`` console command: one entry point that dispatches to llm/, toy/ and reproduce/.

It sits outside the ``aent`` package on purpose (DESIGN.md): ``import aent`` stays torch-only, and this package
imports a half only when its sub-command runs. ``aent --help`` lists the sub-commands.
"""

from aent_cli.dispatch import COMMANDS, main

__all__ = ["COMMANDS", "main"]
