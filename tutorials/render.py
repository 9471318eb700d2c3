"""Execute the tutorials and write the notebooks that the documentation site shows (docs/tutorials/*.ipynb).

The site (mkdocs-jupyter) renders committed, already executed notebooks: building the docs never runs a
tutorial, so ``mkdocs build`` and the test suite stay fast. This script is how those notebooks are made:

    python tutorials/render.py                    # every tutorial, full run (no AENT_SMOKE), minutes
    python tutorials/render.py 04 06              # only these
    python tutorials/render.py --smoke 05         # the short version (only to try the script)
    python tutorials/render.py --check            # exit 1 if a committed notebook is out of date

Each ``tutorials/NN_name.py`` (jupytext percent format) is executed with nbclient on the ``python3`` kernel
and written to ``docs/tutorials/NN_name.ipynb``, with links to documentation pages rewritten for the site
(``../docs/page.md`` -> ``../../page/``), execution timestamps dropped, and the source file's SHA-256 in the
notebook metadata (``aent.source_sha256``). ``--check`` compares those hashes with the sources; the test
suite runs the same check (tests/test_tutorials.py), so a tutorial edited without re-rendering fails CI.

Environment: ``AENT_TUTORIAL_OUT`` (default: a fresh temporary folder) is where the runs go; with
``AENT_TUTORIAL_REUSE=1``, tutorial 5 reuses a finished run in that folder whose saved config equals the one it
would train (the figures then come from that run).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "tutorials"
SITE = REPO / "docs" / "tutorials"
# ](../docs/llm/setting.md#x) -> ](../../llm/setting/#x): a notebook page NN_name.ipynb is served at
# /tutorials/NN_name/, two levels below the site root.
DOC_LINK = re.compile(r"\]\(\.\./docs/([^)#\s]+?)\.md(#[^)\s]*)?\)")
TUTORIAL_LINK = re.compile(r"\]\((?:\.\./tutorials/)?(\d\d_[a-z0-9_]+)\.py\)")


def sources(selected: list[str]) -> list[Path]:
    """The tutorial files, all or those whose number (``04``) or name is given."""
    found = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if not selected:
        return found
    out = [p for p in found if p.stem[:2] in selected or p.stem in selected]
    missing = set(selected) - {p.stem[:2] for p in out} - {p.stem for p in out}
    if missing:
        raise SystemExit(f"no tutorial matches {sorted(missing)}; tutorials: {[p.stem for p in found]}")
    return out


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def site_links(text: str) -> str:
    """Rewrite repository-relative links of a markdown cell into links that work on the site."""
    text = DOC_LINK.sub(lambda m: f"](../../{m.group(1)}/{m.group(2) or ''})", text)
    return TUTORIAL_LINK.sub(lambda m: f"](../{m.group(1)}/)", text)


def render(path: Path, out_dir: Path, smoke: bool, timeout: int) -> Path:
    """Execute one tutorial and write its site notebook; returns the notebook path."""
    import jupytext
    import nbclient
    import nbformat

    nb = jupytext.read(path)
    # the inline backend, so that every figure a cell draws is stored in the notebook as its output
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "OMP_NUM_THREADS": "1",
           "AENT_TUTORIAL_OUT": str(out_dir),
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    saved = {k: os.environ.get(k) for k in [*env, "AENT_SMOKE"]}
    os.environ.update(env)
    os.environ.pop("AENT_SMOKE", None)
    if smoke:
        os.environ["AENT_SMOKE"] = "1"
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(REPO)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "markdown":
            cell.source = site_links(cell.source)
    nb.metadata["aent"] = {"source": f"tutorials/{path.name}", "source_sha256": source_hash(path),
                           "smoke": smoke}
    SITE.mkdir(parents=True, exist_ok=True)
    target = SITE / f"{path.stem}.ipynb"
    nbformat.write(nb, target)
    return target


def stale(paths: list[Path]) -> list[str]:
    """Tutorials whose site notebook is missing or was rendered from another version of the source."""
    import json

    problems = []
    for p in paths:
        target = SITE / f"{p.stem}.ipynb"
        if not target.is_file():
            problems.append(f"{target.relative_to(REPO)} is missing")
            continue
        meta = json.loads(target.read_text()).get("metadata", {}).get("aent", {})
        if meta.get("source_sha256") != source_hash(p):
            problems.append(f"{target.relative_to(REPO)} was rendered from another version of tutorials/{p.name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tutorials", nargs="*", help="numbers (04) or names of tutorials; default: all")
    ap.add_argument("--smoke", action="store_true", help="run with AENT_SMOKE=1 (short, for trying the script)")
    ap.add_argument("--check", action="store_true", help="only check that the site notebooks are up to date")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell before giving up (default 3600)")
    args = ap.parse_args(argv)
    paths = sources(args.tutorials)
    if args.check:
        problems = stale(paths)
        for line in problems:
            print(line)
        if problems:
            print("re-render with: python tutorials/render.py " + " ".join(sorted({p[:2] for p in
                  (Path(x.split()[0]).stem for x in problems)})))
        return 1 if problems else 0
    out_dir = Path(os.environ.get("AENT_TUTORIAL_OUT") or tempfile.mkdtemp(prefix="aent-tutorials-")).resolve()
    for p in paths:
        start = time.time()
        target = render(p, out_dir, args.smoke, args.timeout)
        print(f"{p.name}: {time.time() - start:.0f} s -> {target.relative_to(REPO)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
