"""Every number of the report with its provenance: one formatter, a record of each number's field, and the check.

The report is rendered through :class:`Fields`: a value read from a JSON file is printed by :func:`fmt_number`
(numbers) or as written (strings, keys), and remembered with its file and field path. When the text is finished,
each number token of the report (the tokens :func:`report_numbers` finds) is attributed to the field it came from,
or to the fixed template text, and the list is written beside the report as ``report.numbers.json``:

    {"printed": "0.412", "source": "llm/summary.json", "field": ["methods", "aent", ...], "kind": "number", "nd": 3}

:func:`check_report` re-derives every printed number from its field (loading the JSON again and formatting the
value with the same formatter, or reading the token at the same place of a JSON string) and compares it with the
number printed at that place of the report. A changed, added or removed number is reported with its field.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from pathlib import Path
from typing import Any

__all__ = ["RECORD_NAME", "Fields", "check_report", "fmt_number", "report_numbers"]

RECORD_NAME = "report.numbers.json"

# A number in prose: not glued to a letter, '@', '/', '_' or '-' of an identifier (pass@1, figure1.png, x-2).
_NUM = re.compile(r"(?<![\w@/.\-])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w@/])")
# Not read as numbers: images, link targets and inline code.
_STRIP = [re.compile(r"!\[[^\]]*\]\([^)]*\)"), re.compile(r"\]\([^)]*\)"), re.compile(r"`[^`]*`")]
_OPEN, _MID, _CLOSE = "\ue000", "\ue001", "\ue002"  # private-use marks around a rendered field while composing
_MARK = re.compile(f"{_OPEN}(\\d+){_MID}(.*?){_CLOSE}", re.DOTALL)


def fmt_number(x: Any, nd: int = 3) -> str:
    """The one formatter of report numbers: ints as written, floats with `nd` decimals, None / non-finite "n/a"."""
    if x is None or isinstance(x, bool) or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a" if not isinstance(x, bool) else str(x)
    if isinstance(x, int):
        return str(x)
    return f"{float(x):.{nd}f}"


def _blank(text: str) -> str:
    """`text` with images, link targets and inline code replaced by spaces of the same length (offsets kept)."""
    for pat in _STRIP:
        text = pat.sub(lambda m: " " * len(m.group(0)), text)
    return text


def report_numbers(text: str) -> list[str]:
    """The number tokens of a Markdown report, leaving out image/link targets, inline code and identifiers."""
    return _NUM.findall(_blank(text))


def _get(data: Any, field: list) -> Any:
    """The value at `field` (keys and list indices; ``{"key": i}`` is the i-th key of a mapping, ``{"len": 1}``
    the length of the container reached so far)."""
    for part in field:
        if isinstance(part, dict) and "len" in part:
            data = len(data)
        elif isinstance(part, dict):
            data = list(data)[part["key"]]
        else:
            data = data[part]
    return data


class Fields:
    """Renders JSON values into report text and remembers, for each, its file and field."""

    def __init__(self) -> None:
        self._entries: list[dict] = []

    def _mark(self, entry: dict, text: str) -> str:
        self._entries.append(entry)
        return f"{_OPEN}{len(self._entries) - 1}{_MID}{text}{_CLOSE}"

    def num(self, source: str, data: Any, *field, nd: int = 3) -> str:
        """``fmt_number`` of the value at `field` of `data` (the content of `source`)."""
        return self._mark({"source": source, "field": list(field), "kind": "number", "nd": nd},
                          fmt_number(_get(data, list(field)), nd))

    def text(self, source: str, data: Any, *field) -> str:
        """The value at `field` as written (``str``); numbers inside it are read from that string."""
        return self._mark({"source": source, "field": list(field), "kind": "text"}, str(_get(data, list(field))))

    def cell(self, source: str, data: Any, *field) -> str:
        """A table cell: floats through the formatter, anything else as written, None as empty."""
        value = _get(data, list(field))
        if value is None:
            return ""
        return self.num(source, data, *field) if isinstance(value, float) else self.text(source, data, *field)

    def finish(self, marked: str) -> tuple[str, list[dict]]:
        """(report text, record): the marks removed, and each number token attributed to its field or the template."""
        parts, spans, pos = [], [], 0
        for m in _MARK.finditer(marked):
            parts.append(marked[pos : m.start()])
            start = sum(map(len, parts))
            parts.append(m.group(2))
            spans.append((start, start + len(m.group(2)), int(m.group(1))))
            pos = m.end()
        parts.append(marked[pos:])
        text = "".join(parts)
        starts = [s[0] for s in spans]
        record = []
        for m in _NUM.finditer(_blank(text)):
            i = bisect.bisect_right(starts, m.start()) - 1
            if i >= 0 and spans[i][0] <= m.start() < spans[i][1]:
                start, end, idx = spans[i]
                if m.end() > end:
                    raise ValueError(f"report number {m.group(0)!r} runs past its field {self._entries[idx]}")
                record.append({"printed": m.group(0), **self._entries[idx], "offset": m.start() - start})
            else:
                record.append({"printed": m.group(0), "source": "template"})
        return text, record


def _derive(entry: dict, root: Path, cache: dict) -> str:
    """The number `entry` says should be printed, re-derived from its JSON field (or the template)."""
    if entry["source"] == "template":
        return entry["printed"]
    if entry["source"] not in cache:
        cache[entry["source"]] = json.loads((root / entry["source"]).read_text())
    value = _get(cache[entry["source"]], entry["field"])
    if entry["kind"] == "number":
        return fmt_number(value, entry["nd"])
    s = str(value)
    m = _NUM.match(_blank(s), entry["offset"])
    return m.group(0) if m else "(no number here)"


def check_report(report: Path, record: Path, root: Path) -> list[str]:
    """Problems of `report`: each printed number against its field re-derived from the JSON under `root`.

    Args:
        report: the Markdown report.
        record: its ``report.numbers.json``.
        root: the folder the record's sources are relative to (the run folder).

    Returns:
        One line per problem (a number that differs from its field, a number too many or too few); empty = passes.
    """
    printed = report_numbers(Path(report).read_text())
    entries = json.loads(Path(record).read_text())
    problems, cache = [], {}
    for i, (tok, entry) in enumerate(zip(printed, entries), start=1):
        try:
            want = _derive(entry, Path(root), cache)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            want = f"(unreadable: {type(e).__name__}: {e})"
        if tok != want:
            where = "the template" if entry["source"] == "template" else f"{entry['source']} {entry['field']}"
            problems.append(f"number {i}: printed {tok!r}, {where} gives {want!r}")
    if len(printed) != len(entries):
        problems.append(f"the report prints {len(printed)} numbers but {record} records {len(entries)}")
    return problems
