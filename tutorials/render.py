"""Execute the tutorials and write the notebooks that the documentation site shows (docs/tutorials/*.ipynb).

The site (mkdocs-jupyter) renders committed, already executed notebooks: building the docs never runs a
tutorial, so ``mkdocs build`` and the test suite stay fast. This script is how those notebooks are made:

    python tutorials/render.py                    # every tutorial, full run (no AENT_SMOKE), minutes
    python tutorials/render.py 04 06              # only these
    python tutorials/render.py --smoke 05         # the short version (only to try the script)
    python tutorials/render.py --check            # exit 1 if a committed notebook is out of date

Each ``tutorials/NN_name.py`` (jupytext percent format) is executed with nbclient on the ``python3`` kernel
and written to ``docs/tutorials/NN_name.ipynb``, with links to documentation pages rewritten for the site
(``../docs/page.md`` -> ``../../page/``), execution timestamps dropped, and outputs cleaned for the site (see
:func:`clean_text`: the output folder is shown as ``runs/tutorials``, the repository as ``.``, the
``AENT_TUTORIAL_REUSE`` notes and warnings printed to stderr are dropped). The notebook metadata records the
SHA-256 of the source file (``aent.source_sha256``) and of every project module the kernel had imported when the
last cell finished (``aent.library_sha256``: ``aent/``, ``toy/``, ``llm/``, ``reproduce/`` files, transitive
imports included). ``--check`` compares both with the working tree; the test suite runs the same check
(tests/test_tutorials.py), so a tutorial, or library code it calls, edited without re-rendering fails CI.

Environment: ``AENT_TUTORIAL_OUT`` (default: a fresh temporary folder) is where the runs go; with
``AENT_TUTORIAL_REUSE=1``, tutorial 5 reuses a finished run in that folder whose saved config equals the one it
would train (the figures then come from that run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
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
LIBRARY = ("aent", "toy", "llm", "reproduce")  # project packages whose code a tutorial's output depends on
# run in the kernel after the last cell: the project files it imported (printed as JSON, then the cell is dropped)
_IMPORTED = ("import json as _j, sys as _s\n"
             "print(_j.dumps(sorted({{m.__file__ for m in list(_s.modules.values())\n"
             "    if (getattr(m, '__file__', None) or '').startswith({root!r})}})))")
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


def library_files(files: list[str]) -> dict[str, str]:
    """{repository-relative path: SHA-256} of the project library files among ``files`` (absolute paths)."""
    out = {}
    for f in files:
        rel = Path(f).resolve().relative_to(REPO)
        if rel.parts[0] in LIBRARY and rel.suffix == ".py":
            out[rel.as_posix()] = source_hash(REPO / rel)
    return dict(sorted(out.items()))


_REUSE_NOTE = re.compile(r"^\(AENT_TUTORIAL_REUSE=1: [^\n]*\)\n?", re.M)


def clean_text(text: str, out_dir: Path) -> str:
    """An output text as the site shows it: no machine paths, no render-only notes.

    The folder the runs went to becomes ``runs/tutorials`` (the tutorials' own default), the repository root
    becomes ``.``, and the ``AENT_TUTORIAL_REUSE`` notes of tutorial 5 are removed.
    """
    for path in sorted({str(out_dir), str(Path(out_dir).resolve())}, key=len, reverse=True):
        text = text.replace(path, "runs/tutorials")
    text = text.replace(str(REPO) + os.sep, "").replace(str(REPO), ".")
    return _REUSE_NOTE.sub("", text)


def clean_outputs(cell, out_dir: Path) -> None:
    """Drop stderr streams (warnings, progress bars) and clean the text of every other output in place."""
    kept = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            if out.get("name") == "stderr":
                continue
            out["text"] = clean_text(out["text"], out_dir)
            if not out["text"]:
                continue
        for mime in ("text/plain", "text/html", "text/markdown"):
            if mime in out.get("data", {}):
                data = out["data"][mime]
                out["data"][mime] = clean_text("".join(data) if isinstance(data, list) else data, out_dir)
        kept.append(out)
    cell["outputs"] = kept


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
    probe = nbformat.v4.new_code_cell(_IMPORTED.format(root=str(REPO)))
    nb.cells.append(probe)
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(REPO)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nb.cells.pop()
    imported = json.loads("".join(o["text"] for o in probe.outputs if o.get("name") == "stdout"))
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "markdown":
            cell.source = site_links(cell.source)
        else:
            clean_outputs(cell, out_dir)
    nb.metadata["aent"] = {"source": f"tutorials/{path.name}", "source_sha256": source_hash(path),
                           "library_sha256": library_files(imported), "smoke": smoke}
    SITE.mkdir(parents=True, exist_ok=True)
    target = SITE / f"{path.stem}.ipynb"
    nbformat.write(nb, target)
    return target


def stale(paths: list[Path]) -> list[str]:
    """Tutorials whose site notebook is missing or was rendered from another version of the source or of the
    library code the tutorial imported."""
    problems = []
    for p in paths:
        target = SITE / f"{p.stem}.ipynb"
        if not target.is_file():
            problems.append(f"{target.relative_to(REPO)} is missing")
            continue
        meta = json.loads(target.read_text()).get("metadata", {}).get("aent", {})
        if meta.get("source_sha256") != source_hash(p):
            problems.append(f"{target.relative_to(REPO)} was rendered from another version of tutorials/{p.name}")
        library = meta.get("library_sha256")
        if not library:
            problems.append(f"{target.relative_to(REPO)} does not record the library code it ran (render it again)")
            continue
        changed = [f for f, h in library.items() if not (REPO / f).is_file() or source_hash(REPO / f) != h]
        if changed:
            problems.append(f"{target.relative_to(REPO)} was rendered with other versions of {', '.join(changed)}")
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
