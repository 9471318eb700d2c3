"""YAML reading of config files and override values: YAML 1.2 booleans, duplicate keys refused, one-line errors."""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any

__all__ = ["yaml_load", "yaml_problem"]


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
