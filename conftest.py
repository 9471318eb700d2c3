"""Doc examples of the library run in the default suite: the ``>>>`` examples of every module under ``aent/``.

``pyproject.toml`` lists ``aent`` among the ``testpaths``; this hook turns each of its modules that holds an example
into a doctest item (pytest's own ``--doctest-modules`` would import every module of ``tests/`` too). A module of
``aent/integrations/`` imports its framework (TRL, verl), so it is collected only when that framework is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from _pytest.doctest import DoctestModule

ROOT = Path(__file__).resolve().parent
LIBRARY = ROOT / "aent"


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.suffix != ".py" or not file_path.is_relative_to(LIBRARY):
        return None
    if ">>>" not in file_path.read_text(encoding="utf-8"):
        return None
    rel = file_path.relative_to(LIBRARY)
    if rel.parts[0] == "integrations" and rel.stem != "__init__" and importlib.util.find_spec(rel.stem) is None:
        return None
    return DoctestModule.from_parent(parent, path=file_path)
