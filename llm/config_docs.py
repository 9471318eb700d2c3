"""Field documentation of the trainer's config: each field's docstring (the string literal under it), read from the
sources, and the Markdown table of every field that ``aent fields`` prints and docs/llm/trainer.md embeds."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap

from llm.config import SECTIONS, TrainConfig

__all__ = ["field_docs", "field_table"]


def field_docs(cls: type) -> dict[str, str]:
    """Map each dataclass field to the docstring written under it (read from the class source with ast)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, body[1:]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def field_table(cfg: TrainConfig | None = None) -> str:
    """Markdown table of every config field (dotted key, default, doc), generated from the dataclass docstrings."""
    cfg = cfg or TrainConfig()
    rows = ["| key | default | description |", "| --- | --- | --- |"]
    top = field_docs(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name in SECTIONS:
            continue
        rows.append(f"| `{f.name}` | `{getattr(cfg, f.name)!r}` | {top.get(f.name, '')} |")
    for name, sec in SECTIONS.items():
        docs = field_docs(sec)
        for f in dataclasses.fields(sec):
            rows.append(f"| `{name}.{f.name}` | `{getattr(getattr(cfg, name), f.name)!r}` | {docs.get(f.name, '')} |")
    return "\n".join(rows)
