"""Adapters that put aent's entropy control inside other RL frameworks.

Each submodule imports its framework itself and is loaded only on demand, so ``import aent`` (and
``import aent.integrations``) stays torch-only:

- :mod:`aent.integrations.trl`: ``AEntGRPOTrainer``, a ``trl.GRPOTrainer`` whose loss is
  :class:`aent.EntropyControl`'s, from hidden states through :func:`aent.chunked_policy_terms` (needs ``trl``);
  :mod:`aent.integrations.trl_config`: ``AEntGRPOConfig``, TRL's ``GRPOConfig`` with the entropy settings as
  ``aent_*`` fields (``TrlParser``, YAML, command line);
- :mod:`aent.integrations.verl`: a patch of verl's actor (clamped entropy in its loss's entropy term, an aent
  controller driving ``entropy_coeff`` once per global step, ``aent/*`` metrics).
"""

__all__: list[str] = []
