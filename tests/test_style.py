"""Size limits of the package's code: no function over 80 lines (unless its docstring says it
reads better top to bottom) and no module over 450 lines (docs/ARCHITECTURE.md, Style)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dynconf"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 450
LONG_BY_CHOICE = "reads better top to bottom"  # the docstring phrase that allows a long function
SOURCES = sorted(PACKAGE.rglob("*.py"))


def long_functions(path: Path) -> list[str]:
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = node.end_lineno - node.lineno + 1
        doc = ast.get_docstring(node) or ""
        if length > MAX_FUNCTION_LINES and LONG_BY_CHOICE not in " ".join(doc.split()):
            found.append(f"{name}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_sources_are_found():
    assert len(SOURCES) > 50


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_functions_are_short(path):
    found = long_functions(path)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_are_short(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


def test_the_limit_catches_a_long_function_and_honours_the_phrase(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    sample = tmp_path / "sample.py"
    sample.write_text(f"def long():\n{body}\n")
    assert long_functions(sample) == [f"{sample}:1 long ({MAX_FUNCTION_LINES + 1} lines)"]
    sample.write_text(f'def long():\n    """It {LONG_BY_CHOICE}."""\n{body}\n')
    assert long_functions(sample) == []
