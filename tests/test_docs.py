"""The documentation site builds with ``mkdocs build --strict`` (a broken link or a missing page fails).

Also checks, without mkdocs, that every relative Markdown link in docs/ points at a file that exists (so a
broken link is reported by name even where mkdocs is not installed), that the proposed nav names existing
pages, that the tests cited on the Concepts page exist, and that every API block names an importable object.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
_LINK = re.compile(r"\]\(([^)\s]+?)(?:\s+\"[^\"]*\")?\)")


def _mkdocs() -> list[str] | None:
    """Command that runs mkdocs with this interpreter's packages, or None when it is not installed."""
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "mkdocs"]


def test_mkdocs_build_strict(tmp_path):
    """`mkdocs build --strict -f mkdocs.yml` from the repo root succeeds; on failure the output is shown."""
    cmd = _mkdocs()
    if cmd is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    if not (REPO / "mkdocs.yml").is_file():
        pytest.fail("mkdocs.yml is missing from the repo root")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # silence Material's end-of-life banner
    proc = subprocess.run(
        [*cmd, "build", "--strict", "-f", "mkdocs.yml", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()


def _relative_links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links inside code blocks are not links
    out = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # absolute URL (http:, mailto:) or an anchor on the same page
        out.append(target.split("#", 1)[0])
    return out


def test_relative_links_resolve():
    """Every relative link in docs/**/*.md names an existing file (checked without mkdocs)."""
    if not DOCS.is_dir():
        pytest.fail("docs/ is missing")
    broken = []
    for page in sorted(DOCS.rglob("*.md")):
        for target in _relative_links(page):
            if target and not (page.parent / target).resolve().exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_concepts_page_names_real_tests():
    """Every `file.py::test_name` cited on docs/concepts.md is a test function that exists under tests/."""
    page = DOCS / "concepts.md"
    if not page.is_file():
        pytest.skip("docs/concepts.md not present")
    cited = set(re.findall(r"`([\w/]+\.py)::(\w+)`", page.read_text(encoding="utf-8")))
    assert cited, "docs/concepts.md cites no tests"
    missing = []
    for path, name in sorted(cited):
        source = REPO / "tests" / path
        if not source.is_file() or not re.search(
            rf"^\s*def {name}\(", source.read_text(encoding="utf-8"), re.M
        ):
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/concepts.md cites tests that do not exist: {missing}"


def _resolve(path: str) -> None:
    """Import the object named by a dotted path (a module, or an attribute of one); raise if it is missing."""
    import importlib

    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as err:
            if err.name and not path.startswith(err.name):
                raise  # a dependency of the module is missing, not the module itself
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return
    raise ModuleNotFoundError(path)


def test_api_objects_import():
    """Every `::: dotted.path` in docs/ names an object that imports.

    mkdocstrings reads the source statically: a module that fails to import would still get a page.
    """
    names = sorted(
        {
            m
            for page in DOCS.rglob("*.md")
            for m in re.findall(r"^:::\s+([\w.]+)", page.read_text(encoding="utf-8"), flags=re.M)
        }
    )
    if not names:
        pytest.skip("no API blocks in docs/")
    broken = []
    for name in names:
        try:
            _resolve(name)
        except Exception as err:  # noqa: BLE001  (report every failure, whatever its type)
            broken.append(f"{name}: {type(err).__name__}: {err}")
    assert not broken, "API pages name objects that do not import:\n" + "\n".join(broken)
