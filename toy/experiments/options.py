"""An experiment's config dataclass as command-line options: one ``--field-name`` per field, help from its docstring.

A field whose default is itself a dataclass is a *section* (Figure 1's ``bandit`` and ``tree``): each of its fields
becomes ``--SECTION-FIELD`` (``--bandit-n-arms``; argparse dest ``SECTION.FIELD``), and the section is built with
:func:`dataclasses.replace` on its default, so every field is declared once, in its own dataclass. Names in the
config's ``FIXED`` class attribute (``"bandit.estimator"``) are set by the experiment and get no option. A section's
field given without its section's name (``--n-arms``, the flat form of an older config) is refused with one message
that names the options that replaced it.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

__all__ = ["add_config_arguments", "config_from_args", "field_docs", "option_dests"]


def field_docs(cls) -> dict[str, str]:
    """{field: docstring} of a dataclass whose fields carry attribute docstrings (the string after each field)."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr) \
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def _sections(cls) -> dict[str, Any]:
    """{field: default instance} of the fields of ``cls`` that are sections (their default is a dataclass)."""
    return {f.name: d for f in dataclasses.fields(cls)
            if dataclasses.is_dataclass(d := _default(f)) and not isinstance(d, type)}


def _options(cls) -> list[tuple[str, Any, str]]:
    """(dest, default, help) of every option of ``cls``: its plain fields, then each section's fields."""
    fixed, sections = set(getattr(cls, "FIXED", ())), _sections(cls)
    docs = field_docs(cls)
    out = [(f.name, _default(f), docs.get(f.name, "")) for f in dataclasses.fields(cls) if f.name not in sections]
    for name, sec in sections.items():
        sec_docs = field_docs(type(sec))
        out += [(f"{name}.{f.name}", getattr(sec, f.name), f"[{name}] {sec_docs.get(f.name, '')}")
                for f in dataclasses.fields(sec) if f"{name}.{f.name}" not in fixed]
    return out


def option_dests(cls) -> list[str]:
    """The argparse dests of :func:`add_config_arguments` (``field`` or ``section.field``)."""
    return [dest for dest, _, _ in _options(cls)]


def _parser_type(default):
    """(argparse type, nargs) for a field default: tuples become space-separated lists."""
    if isinstance(default, tuple):
        inner = type(default[0]) if default else float
        return inner, "+"
    if isinstance(default, bool):
        return None, None
    return (type(default) if default is not None else float), None


def _moved(flags: list[str]) -> type[argparse.Action]:
    class Moved(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            parser.error(f"{option_string} is now {' and '.join(flags)}: a section's options carry its name")
    return Moved


def add_config_arguments(parser, cls, skip: Sequence[str] = ()) -> None:
    """One ``--field-name`` option per field of ``cls`` (``--section-field`` per field of a section)."""
    options = [o for o in _options(cls) if o[0] not in skip]
    for dest, default, doc in options:
        flag = "--" + dest.replace(".", "-").replace("_", "-")
        helptext = f"{doc} (default: {default!r})".replace("%", "%%")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=helptext)
            continue
        typ, nargs = _parser_type(default)
        parser.add_argument(flag, dest=dest, type=typ, nargs=nargs, default=None,
                            metavar=dest.rsplit(".", 1)[-1].upper(), help=helptext)
    plain = {f.name for f in dataclasses.fields(cls)}
    moved: dict[str, list[str]] = {}
    for dest, _, _ in options:
        if "." in dest and dest.split(".", 1)[1] not in plain:
            moved.setdefault(dest.split(".", 1)[1], []).append("--" + dest.replace(".", "-").replace("_", "-"))
    for name, flags in moved.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=f"moved.{name}", nargs="*", action=_moved(flags),
                            help=argparse.SUPPRESS)


def config_from_args(cls, args, **fixed):
    """Build ``cls`` from the parsed options that were given (others keep their defaults) plus ``fixed`` (keys
    ``field`` or ``section.field``); a bad section value raises ValueError naming its option."""
    kw: dict[str, Any] = {}
    for dest in option_dests(cls):
        value = getattr(args, dest, None)
        if value is not None:
            kw[dest] = tuple(value) if isinstance(value, list) else value
    kw.update(fixed)
    for name, sec in _sections(cls).items():
        sub = {k.split(".", 1)[1]: kw.pop(k) for k in list(kw) if k.startswith(name + ".")}
        if sub:
            try:
                kw[name] = dataclasses.replace(sec, **sub)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{name} section (options --{name}-FIELD): {err}") from None
    return cls(**kw)
