"""The shape of the package, checked: imports point one way, no cycles, stages do not branch on engines,
no module grows past what one person can hold in their head."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "marvel"
MAX_LINES = 500
# packages that may be imported only from above: stages compose parts; the CLI wires everything
TOP = {"stages", "cli"}


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PACKAGE.rglob("*.py"):
        name = ".".join(f.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        mods[name] = f
    return mods


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> marvel modules it imports anywhere in its body (top-level or inside functions)."""
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            graph[m] |= {n for n in names if n in mods and n != m}
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_imports(_modules())) == []


def test_core_imports_only_core() -> None:
    graph = _imports(_modules())
    wrong = [(m, t) for m, ts in graph.items() if _package(m) == "core" for t in ts if _package(t) != "core"]
    assert wrong == []


def test_parts_never_import_stages_or_the_cli() -> None:
    graph = _imports(_modules())
    wrong = [
        (m, t)
        for m, ts in graph.items()
        if _package(m) not in TOP and m != "marvel.__main__"
        for t in ts
        if _package(t) in TOP
    ]
    assert wrong == []


def test_stages_do_not_branch_on_engines_or_stores() -> None:
    """Engine differences live behind the Compute protocol; a stage asks no frame or store what it is."""
    pattern = re.compile(r"\b(isinstance|hasattr)\([^)]*\b(frame|store|df|out|raw|compute)\b")
    engines = re.compile(r"\b(pyspark|spark|databricks|pd\.DataFrame\))", re.I)
    for f in (PACKAGE / "stages").glob("*.py"):
        text = f.read_text()
        assert not pattern.search(text), f.name
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        body = re.sub(r'"""(.|\n)*?"""', "", code)
        assert not engines.search(body), f"{f.name}: {engines.search(body)}"


def test_no_module_is_too_long() -> None:
    long = {
        str(f.relative_to(PACKAGE)): n
        for f in PACKAGE.rglob("*.py")
        if (n := len(f.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
