"""The configs shipped with aent, installed as the package ``aent_configs`` and read with importlib.resources.

This folder is ``configs/`` in the repository and ``aent_configs`` once installed (``setup.py`` maps one to the
other), so a wheel carries the same YAML files a checkout has. A config is named by its path below this folder
without ``.yaml``: ``tiny``, ``aent_qwen2.5_math_1.5b``, ``reproduce/smoke``, ``accelerate/fsdp_8gpu``.

:func:`resolve` is what every ``--config`` option uses: an existing file path wins (relative to the working
directory), otherwise the name of a packaged config, so ``--config tiny`` works from any folder and the
repository-style ``--config configs/tiny.yaml`` still works outside the repository.
"""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path

__all__ = ["names", "path", "resolve"]

_SUFFIX = ".yaml"


def _root() -> Path:
    root = resources.files(__name__)
    if not isinstance(root, Path):  # pragma: no cover - pip always installs wheels unzipped
        raise RuntimeError(f"the aent configs must be installed as files, not inside {root}")
    return root


def names(folder: str = "") -> list[str]:
    """Names of the packaged configs (``tiny``, ``reproduce/smoke``, ...), sorted; ``folder`` keeps one sub-folder."""
    root = _root()
    found = sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob(f"*{_SUFFIX}"))
    return [n for n in found if not folder or n.startswith(f"{folder}/")]


def _name_of(spec: str) -> str:
    name = spec.replace(os.sep, "/").strip()
    name = name.removeprefix("./").removeprefix("configs/")
    return name.removesuffix(_SUFFIX)


def path(name: str, folder: str = "") -> Path:
    """The file of a packaged config.

    Args:
        name: ``tiny``, ``tiny.yaml`` or ``configs/tiny.yaml``; with ``folder="reproduce"`` also ``smoke``.
        folder: sub-folder tried first (``reproduce``, ``accelerate``), "" = the top level only.

    Raises:
        FileNotFoundError: no packaged config of that name; the message lists the packaged names.
    """
    root = _root()
    bare = _name_of(name)
    for candidate in ([f"{folder}/{bare}"] if folder and not bare.startswith(f"{folder}/") else []) + [bare]:
        p = root / f"{candidate}{_SUFFIX}"
        if p.is_file():
            return p
    known = names(folder) or names()
    close = difflib.get_close_matches(bare, known + [n.split("/", 1)[-1] for n in known], n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise FileNotFoundError(f"config {name!r} not found: neither a file nor a packaged config{hint}; packaged configs: "
                            f"{', '.join(known)} (list them with `aent config --list`)")


def resolve(spec: str | os.PathLike, folder: str = "") -> Path:
    """An existing file as given (``~`` expanded), else the packaged config of that name (see :func:`path`)."""
    p = Path(spec).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        raise FileNotFoundError(f"config {str(spec)!r} is a folder; pass a YAML file or a packaged config name")
    return path(str(spec), folder)
