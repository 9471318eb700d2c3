"""Adapters that put aent's entropy control inside other RL frameworks.

Each submodule imports its framework itself and is loaded only on demand, so ``import aent`` (and
``import aent.integrations``) stays torch-only:

- :mod:`aent.integrations.trl`: ``AEntGRPOTrainer``, a ``trl.GRPOTrainer`` whose loss is
  :class:`aent.EntropyControl`'s (needs ``trl``);
- :mod:`aent.integrations.verl`: a patch of verl's actor (clamped entropy in its entropy term, an aent controller
  driving ``entropy_coeff`` once per global step).
"""

__all__: list[str] = []
