"""The layers hold: every import statement of dynconf (also those inside functions) is parsed,
and forbidden imports across layers or any import cycle fail this test (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dynconf"

# Third-party packages a layer must not import, and dynconf layers it must not reach.
RULES = {
    "dynconf.core": (
        {"torch", "torchvision", "streamlit", "plotly", "kaleido", "pandas", "PIL"},
        (
            "dynconf.engine",
            "dynconf.report",
            "dynconf.cli",
            "dynconf.jobs",
            "dynconf.inputs",
            "dynconf.app",
        ),
    ),
    "dynconf.report": (
        {"torch", "torchvision", "streamlit"},
        ("dynconf.engine", "dynconf.cli", "dynconf.jobs", "dynconf.app"),
    ),
    "dynconf.engine": (
        {"streamlit", "plotly", "kaleido"},
        ("dynconf.report", "dynconf.cli", "dynconf.app"),
    ),
    "dynconf.cli": ({"streamlit"}, ("dynconf.app",)),
    "dynconf.app": ({"torch", "torchvision"}, ("dynconf.cli",)),
}
STREAMLIT_HOME = "dynconf.app"  # the one subpackage allowed to import Streamlit


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> list[tuple[str, int]]:
    """Every module an import statement in ``name`` names, with its line (absolute names;
    ``from package import submodule`` counts as importing the submodule)."""
    path = MODULES[name]
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in MODULES else base, node.lineno))
    return found


def test_every_module_is_seen():
    assert {"dynconf.core.store", "dynconf.core.decoders", "dynconf.engine.snn"} <= set(MODULES)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_layer_rules(name):
    problems = []
    for layer, (packages, layers) in RULES.items():
        if name != layer and not name.startswith(layer + "."):
            continue
        for imported, line in imports_of(name):
            top = imported.split(".")[0]
            if top in packages:
                problems.append(f"{name}:{line} imports {imported} (not allowed in {layer})")
            for other in layers:
                if imported == other or imported.startswith(other + "."):
                    problems.append(f"{name}:{line} imports {imported} ({layer} is below it)")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_the_app_imports_streamlit(name):
    if name == STREAMLIT_HOME or name.startswith(STREAMLIT_HOME + "."):
        return
    found = [line for imported, line in imports_of(name) if imported.split(".")[0] == "streamlit"]
    assert not found, f"{name} imports streamlit at lines {found} (only {STREAMLIT_HOME} may)"


def test_no_import_cycles():
    graph = {
        name: sorted({m for m, _ in imports_of(name) if m in MODULES and m != name})
        for name in MODULES
    }
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for name in graph:
        if name not in state and (cycle := visit(name)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


DECODER_SWITCH = re.compile(r"""decoder["']?\]?\s*(==|!=|in|not in)\s*[("']""")


def test_decoders_are_only_named_in_their_own_files():
    """The decoder seam: no `if decoder == "paper"` outside dynconf/core/decoders."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "decoders" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if DECODER_SWITCH.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
