"""Execute every tutorial notebook (jupytext percent-format ``tutorials/NN_*.py``) under the smoke switch, and
check that the executed notebooks the documentation site shows (``docs/tutorials/NN_*.ipynb``, written by
``tutorials/render.py``) were rendered from the current sources and hold their outputs.

Each tutorial asserts its own claims, so a tutorial that runs to the end has checked them. One test per
tutorial: the file is converted with jupytext and run with nbclient on the ``python3`` kernel of the
interpreter running pytest (its folder goes first on PATH, so the kernel is the venv's), with
``AENT_SMOKE=1`` and the Agg backend.
A failing cell fails the test with the cell's source and traceback.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((REPO / "tutorials").glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 1200  # per cell: a guard against hangs only (shared 2-core machine; T6 trains 5 runs in a cell)

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def test_tutorials_found():
    """The six reading-group tutorials exist (a rename must not silently drop one from the suite)."""
    names = [p.stem[:2] for p in TUTORIALS]
    assert names == ["01", "02", "03", "04", "05", "06"], f"tutorials found: {[p.name for p in TUTORIALS]}"


def _render_module():
    spec = importlib.util.spec_from_file_location("tutorials_render", REPO / "tutorials" / "render.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_site_notebooks_are_up_to_date():
    """Every tutorial has a site notebook rendered from its current source (else: tutorials/render.py NN)."""
    problems = _render_module().stale(TUTORIALS)
    assert not problems, "\n".join(problems) + "\nre-render with: python tutorials/render.py NN"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_site_notebook_has_outputs(path: Path):
    """The site notebook is executed in full (not under AENT_SMOKE), without errors, and shows its figures."""
    nb_path = REPO / "docs" / "tutorials" / f"{path.stem}.ipynb"
    if not nb_path.is_file():
        pytest.fail(f"{nb_path.relative_to(REPO)} is missing; run python tutorials/render.py {path.stem[:2]}")
    nb = json.loads(nb_path.read_text())
    assert nb["metadata"]["aent"]["smoke"] is False, "the site shows the full run, not the smoke run"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), "every code cell was executed"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows at least one figure"


def test_site_links_rewritten():
    """Repository-relative links in markdown cells point at the site pages (hand-written cases)."""
    links = _render_module().site_links
    assert links("see [D](../docs/derivations.md).") == "see [D](../../derivations/)."
    assert links("[s](../docs/llm/setting.md#how) x") == "[s](../../llm/setting/#how) x"
    assert links("[T4](04_entropy_dynamics.py)") == "[T4](../04_entropy_dynamics/)"
    assert links("[web](https://x.org/a.md)") == "[web](https://x.org/a.md)"


def test_site_nav_lists_every_tutorial():
    """mkdocs.yml has a page for each tutorial's site notebook."""
    nav = (REPO / "mkdocs.yml").read_text()
    missing = [p.stem for p in TUTORIALS if f"tutorials/{p.stem}.ipynb" not in nav]
    assert not missing, f"add to the mkdocs.yml nav: {missing}"


def _llm_ready() -> str | None:
    """Why tutorials 05 and 06 cannot run yet (the LLM trainer or its CPU config is missing), or None."""
    if not (REPO / "configs" / "tiny.yaml").is_file():
        return "configs/tiny.yaml is missing"
    try:
        import llm.train  # noqa: F401
    except ImportError as err:  # the trainer is still being assembled
        return f"llm.train does not import: {err}"
    return None


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path: Path, monkeypatch, tmp_path):
    """Run every cell of the tutorial with AENT_SMOKE=1; every assertion in it must hold."""
    from nbclient.exceptions import CellExecutionError

    if path.stem[:2] in ("05", "06"):
        reason = _llm_ready()
        if reason:
            pytest.skip(f"tutorial {path.stem[:2]} needs the LLM trainer: {reason}")
    monkeypatch.setenv("AENT_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("AENT_TUTORIAL_OUT", str(tmp_path))
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = jupytext.read(path)
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    )
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed under AENT_SMOKE=1:\n{err}", pytrace=False)


# Machine-specific text that must not reach the site: absolute paths of the machine that rendered a notebook, the
# render-only notes of tutorial 5, and warnings (which name the venv's site-packages).
MACHINE_TEXT = re.compile(r"(?<![\w.])(/work/|/home/|/root/|/tmp/|/Users/|/private/var/|[A-Za-z]:\\\\Users\\\\)"
                          r"|site-packages|AENT_TUTORIAL_REUSE=1: |Warning: ")


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_site_notebook_has_no_machine_paths(path: Path):
    """No absolute path, venv path or render note in the outputs of a site notebook, and no stderr output."""
    nb_path = REPO / "docs" / "tutorials" / f"{path.stem}.ipynb"
    if not nb_path.is_file():
        pytest.fail(f"{nb_path.relative_to(REPO)} is missing; run python tutorials/render.py {path.stem[:2]}")
    found = []
    for i, cell in enumerate(json.loads(nb_path.read_text())["cells"]):
        for out in cell.get("outputs", []):
            if out.get("name") == "stderr":
                found.append(f"cell {i}: a stderr output")
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                found += [f"cell {i}: {m.group(0)!r} in {text[max(0, m.start() - 40):m.end() + 40]!r}"
                          for m in MACHINE_TEXT.finditer(text)]
    assert not found, f"{nb_path.relative_to(REPO)} shows machine-specific text:\n" + "\n".join(found[:20])


def test_clean_text_hand_written_cases(tmp_path):
    """render.clean_text: the output folder becomes runs/tutorials, the repository '.', the REUSE note goes."""
    mod = _render_module()
    out = tmp_path / "out"
    text = (f"smoke=False, figures go to {out}/01\nrepo root {mod.REPO}, config {mod.REPO}/configs/tiny.yaml\n"
            "(AENT_TUTORIAL_REUSE=1: reusing the finished run with this config)\ndone\n")
    assert mod.clean_text(text, out) == ("smoke=False, figures go to runs/tutorials/01\n"
                                         "repo root ., config configs/tiny.yaml\ndone\n")


def test_stale_covers_the_library_code_a_tutorial_ran(tmp_path, monkeypatch):
    """A site notebook is stale when its source, or any library file it recorded, changed or went missing."""
    mod = _render_module()
    (tmp_path / "tutorials").mkdir()
    (tmp_path / "toy").mkdir()
    src, lib = tmp_path / "tutorials" / "01_x.py", tmp_path / "toy" / "regime.py"
    src.write_text("# %%\nimport toy.regime\n")
    lib.write_text("X = 1\n")
    site = tmp_path / "docs" / "tutorials"
    site.mkdir(parents=True)
    monkeypatch.setattr(mod, "REPO", tmp_path)
    monkeypatch.setattr(mod, "SITE", site)

    def write(library):
        meta = {"aent": {"source_sha256": mod.source_hash(src), "smoke": False, **library}}
        (site / "01_x.ipynb").write_text(json.dumps({"cells": [], "metadata": meta}))

    write({"library_sha256": mod.library_files([str(lib), str(src)])})
    assert mod.library_files([str(lib), str(src)]) == {"toy/regime.py": mod.source_hash(lib)}
    assert mod.stale([src]) == []
    lib.write_text("X = 2\n")
    assert mod.stale([src]) == ["docs/tutorials/01_x.ipynb was rendered with other versions of toy/regime.py"]
    lib.unlink()
    assert "toy/regime.py" in mod.stale([src])[0]
    write({})  # a notebook rendered before the library hashes were recorded
    assert "does not record the library code" in mod.stale([src])[0]
