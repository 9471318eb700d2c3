"""Packaging beyond pyproject.toml: the repository's configs/ folder ships as the package ``aent_configs``.

pyproject.toml cannot rename a folder, and configs/ stays at the top of the repository where the docs point, so
this file adds the mapping; everything else (metadata, dependencies, the ``aent`` command) is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["aent", "aent.*", "aent_cli", "aent_cli.*", "toy", "toy.*", "llm", "llm.*",
                                      "reproduce", "reproduce.*"]), "aent_configs"],
    package_dir={"aent_configs": "configs"},
    package_data={"aent_configs": ["*.yaml", "*/*.yaml"], "": ["py.typed"]},
)
