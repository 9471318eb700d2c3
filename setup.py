"""Packaging beyond pyproject.toml: the repository's configs/ folder ships as the package ``aent_configs``.

pyproject.toml cannot rename a folder, and configs/ stays at the top of the repository where the docs point, so
this file adds the mapping; everything else (metadata, dependencies, the ``aent`` command) is in pyproject.toml.
"""

from setuptools import find_namespace_packages, find_packages, setup

CODE = ["aent", "aent.*", "aent_cli", "aent_cli.*", "toy", "toy.*", "llm", "llm.*", "reproduce", "reproduce.*"]
# configs/ and its sub-folders (reproduce/, accelerate/) become aent_configs, aent_configs.reproduce, ...
CONFIGS = ["aent_configs", *(f"aent_configs.{p}" for p in find_namespace_packages(where="configs"))]

setup(
    packages=[*find_packages(include=CODE), *CONFIGS],
    package_dir={"aent_configs": "configs"},
    package_data={**{p: ["*.yaml"] for p in CONFIGS}, "": ["py.typed"]},
)
