"""The main job: one command that runs the toy studies and the LLM comparison and writes a generated report.

``python -m reproduce --out runs/demo`` (``make demo``); ``--smoke`` for a two-minute version; ``--config`` to
scale the same pipeline to real checkpoints on GPUs. See docs/reproduce.md.
"""

from reproduce.config import ReproduceConfig, load_config

__all__ = ["ReproduceConfig", "load_config"]
