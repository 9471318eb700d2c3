"""YAML reading of config files and ``key=value`` overrides: YAML 1.2 booleans, duplicate keys refused, one-line
errors."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Hashable
from typing import Any

__all__ = ["apply_overrides", "yaml_load", "yaml_problem"]


def yaml_load(text: str) -> Any:
    """Parse YAML with YAML 1.2 booleans: only true / false are booleans, so ``mixed_precision: no`` stays the
    string "no" (PyYAML's safe_load follows YAML 1.1, where yes / no / on / off are booleans too). Boolean fields
    still accept yes / no / on / off, through the field's type."""
    import yaml

    return yaml.load(text, Loader=_yaml12_loader())  # noqa: S506 (a SafeLoader subclass)


@functools.cache
def _yaml12_loader() -> type:
    """yaml.SafeLoader with the boolean resolver limited to true / false (built once, on first use)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            """A mapping whose key appears twice is an error (PyYAML keeps the last value silently)."""
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, Hashable) and key in first:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {first[key] + 1}; keep one)",
                        key_node.start_mark)
                if isinstance(key, Hashable):
                    first[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    Loader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in rs if tag != "tag:yaml.org,2002:bool"]
        for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    return Loader


def yaml_problem(err) -> str:
    """One line from a YAML error: the problem and where (line, column; 1-based)."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(err, 'problem', None) or str(err).splitlines()[0]}{where}"


def apply_overrides(d: dict[str, Any], overrides: list[str], *, sections: Collection[str]) -> dict[str, Any]:
    """Apply ``key=value`` / ``section.key=value`` strings to a nested dict (a copy is returned); ``sections``
    names the config's sections (``llm.config.SECTIONS``)."""
    import yaml

    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value or section.key=value")
        key, raw = item.split("=", 1)
        key = key.strip().lstrip("-")
        parts = key.split(".")
        try:
            value = yaml_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ValueError(f"override {item!r}: the value is not valid YAML ({yaml_problem(err)})") from None
        if len(parts) == 1:
            out[key] = value
        elif len(parts) == 2 and parts[0] in sections:
            sec = out.get(parts[0]) or {}
            if not isinstance(sec, dict):
                sec = dataclasses.asdict(sec)
            out[parts[0]] = {**sec, parts[1]: value}
        else:
            raise ValueError(f"override key {key!r} must be a run field or section.field with section in "
                             f"{sorted(sections)}")
    return out
