"""The studies by name (their own module, so the command line reads them without importing the package)."""

from __future__ import annotations

from llm.studies.clipping import STUDY as CLIPPING
from llm.studies.diversity import STUDY as DIVERSITY
from llm.studies.offpolicy import STUDY as OFFPOLICY
from llm.studies.reweighting import STUDY as REWEIGHTING
from llm.studies.spec import Study

__all__ = ["STUDIES"]

STUDIES: dict[str, Study] = {s.name: s for s in (OFFPOLICY, DIVERSITY, CLIPPING, REWEIGHTING)}
"""Every arms-x-seeds study by name (``exploration`` has its own command line)."""
