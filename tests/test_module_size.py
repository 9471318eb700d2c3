"""No library module over 350 lines (issue 26: a module you can read; the limit is the issue's own number)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("aent", "aent_cli", "llm", "toy", "reproduce")
LIMIT = 350


def test_no_library_module_is_over_the_limit():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines())
             for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    assert len(sizes) > 50  # the walk found the packages
    over = {k: v for k, v in sizes.items() if v > LIMIT}
    assert not over, f"modules over {LIMIT} lines (split them by concept): {over}"
