"""Copy a finished run's report and its figures somewhere else (e.g. into docs/), rewriting the image links.

    python -m reproduce.export runs/demo docs/report_example.md

writes ``docs/report_example.md`` and the figures under ``docs/report_example/``, plus the JSON behind every
number (``report_example/run.json``, ``toy/*/*.json``, ``llm/summary.json``, ``llm/calibration/*/*.json``,
``exploration/demo.json``) and the record of which field each
number came from (``report_example/report.numbers.json``), so the copy stays checkable with
``reproduce.numbers.check_report(copy, record, folder)``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from reproduce.numbers import RECORD_NAME

__all__ = ["export_report"]

_IMG = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


def export_report(run_dir: Path, dest_md: Path) -> list[Path]:
    """Copy ``run_dir/report.md`` to ``dest_md`` with its figures and JSON; returns the files written."""
    run_dir, dest_md = Path(run_dir), Path(dest_md)
    report = run_dir / "report.md"
    if not report.is_file():
        raise FileNotFoundError(f"{report} not found: run `python -m reproduce --out {run_dir}` first")
    assets = dest_md.with_suffix("")
    if assets.exists():
        shutil.rmtree(assets)
    written = []
    wanted = [run_dir / "run.json", *sorted(run_dir.glob("toy/*/*.json")), run_dir / "llm" / "summary.json",
              *sorted(run_dir.glob("llm/calibration/*/*.json")), run_dir / "exploration" / "demo.json",
              run_dir / RECORD_NAME]
    for src in wanted:
        if src.is_file():
            dst = assets / src.relative_to(run_dir)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            written.append(dst)

    def relink(m: re.Match) -> str:
        src = run_dir / m.group(2)
        dst = assets / m.group(2)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        written.append(dst)
        return f"![{m.group(1)}]({assets.name}/{m.group(2)})"

    text = _IMG.sub(relink, report.read_text())
    dest_md.parent.mkdir(parents=True, exist_ok=True)
    dest_md.write_text(text)
    written.append(dest_md)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.export", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", help="folder of a finished `python -m reproduce` run")
    p.add_argument("dest", help="destination Markdown file, e.g. docs/report_example.md")
    args = p.parse_args(argv)
    try:
        files = export_report(Path(args.run_dir), Path(args.dest))
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files; report: {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
