"""Settings flow one way: only entry points read the environment; the library takes values as parameters."""
from __future__ import annotations

import ast
from pathlib import Path

from gauntlet.service import ModelCatalog
from gauntlet.settings import get_settings

LIBRARY = Path(__file__).resolve().parents[1] / "gauntlet"


def callers_of_get_settings(path: Path) -> list[str]:
    """Names of the functions in ``path`` that call ``get_settings()`` ("<module>" for top-level calls)."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Call) and getattr(child.func, "id", None) == "get_settings":
                found.append(function)
            visit(child, name)

    visit(ast.parse(path.read_text()), "<module>")
    return found


def test_only_command_line_entry_points_in_the_library_read_the_settings():
    for path in LIBRARY.rglob("*.py"):
        if path.name == "settings.py":
            continue
        assert set(callers_of_get_settings(path)) <= {"main"}, f"{path} reads the environment outside main()"


def test_the_catalog_takes_its_limits_from_the_settings_it_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("GAUNTLET_MAX_PIXELS", "1234")
    monkeypatch.setenv("GAUNTLET_EXPLAIN_TIMEOUT_S", "7")
    monkeypatch.setenv("GAUNTLET_CHECKPOINTS_DIR", str(tmp_path))
    catalog = ModelCatalog.from_settings(get_settings())
    assert (catalog.max_pixels, catalog.explain_timeout_s, catalog.checkpoints_dir) == (1234, 7.0, tmp_path)
    assert ModelCatalog(checkpoints_dir=tmp_path).max_pixels != 1234, "a catalog built in code ignores the environment"
