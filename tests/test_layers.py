"""The package's layers point one way: every import (module level or inside a function) goes to the same
layer or one below, and no set of modules imports itself in a circle. Read from the code with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cissl_kit"

# bottom to top; a module may import its own layer and those below (docs/library.md: Layout)
LAYERS = [
    ("foundation", ["_checks", "_runtime", "outputs", "utils"]),
    ("data and models", ["data", "models"]),
    ("pieces", ["losses", "thresholds", "memory_bank", "metrics", "distributed", "checkpoint", "stats"]),
    ("one-step algorithms", ["algorithms", "analysis"]),
    ("engine", ["engine"]),
    ("recipes", ["recipes"]),
    ("registry", ["registry"]),
    ("plots and widgets", ["viz"]),
    ("grids and notebook tools", ["benchmark", "course", "grading", "classroom"]),
    ("exercise checks", ["exercise_checks"]),  # otter's test files, read by path (cissl_kit.grading)
    ("command line", ["cli", "_quick_usage", "_grid_worker", "_entry", "__main__"]),
]
RANK = {part: rank for rank, (_, parts) in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The kit modules ``path`` imports, as dotted names (``from . import x`` counts as module ``x``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem for alias in node.names]
        found |= {t for t in targets if t == "cissl_kit" or t.startswith("cissl_kit.")}
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "_runtime"  # the package root imports only its foundation


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(path, modules) if m in modules and m != name} for name, path in modules.items()}


def test_every_module_has_a_layer():
    missing = sorted({_part(m) for m in _modules()} - set(RANK))
    assert not missing, f"modules without a layer in tests/test_layers.py: {missing}"


def test_no_import_points_up_the_stack():
    modules = _modules()
    upward = []
    for name, targets in _graph().items():
        for target in targets:
            if RANK[_part(target)] > RANK[_part(name)]:
                upward.append(f"{modules[name].relative_to(PACKAGE.parent)} ({LAYERS[RANK[_part(name)]][0]}) imports "
                              f"{modules[target].relative_to(PACKAGE.parent)} ({LAYERS[RANK[_part(target)]][0]})")
    assert not upward, "imports that point up the stack:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    graph, modules = _graph(), _modules()
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(str(modules[m].relative_to(PACKAGE.parent)) for m in component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(" ↔ ".join(c) for c in circles)


def test_the_checker_finds_an_upward_import_and_a_circle(tmp_path, monkeypatch):
    """The rules above can fail: a fake package where the engine imports the registry, and two modules
    import each other."""
    fake = tmp_path / "cissl_kit"
    (fake / "algorithms").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "algorithms" / "__init__.py").write_text("")
    (fake / "engine.py").write_text("from .registry import METHODS\n")
    (fake / "registry.py").write_text("from .engine import Trainer\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    graph = _graph()
    assert graph["cissl_kit.engine"] == {"cissl_kit.registry"} and graph["cissl_kit.registry"] == {"cissl_kit.engine"}
    try:
        test_no_import_points_up_the_stack()
    except AssertionError as error:
        assert "cissl_kit/engine.py (engine) imports cissl_kit/registry.py (registry)" in str(error)
    else:
        raise AssertionError("an upward import passed")
    try:
        test_no_import_circles()
    except AssertionError as error:
        assert "cissl_kit/engine.py ↔ cissl_kit/registry.py" in str(error)
    else:
        raise AssertionError("a circle passed")


def test_the_book_draws_these_layers_top_to_bottom():
    page = (PACKAGE.parent / "docs" / "library.md").read_text()
    layout = page[page.index("## Layout"):]
    drawing = layout[layout.index("```\n") + 4:]
    drawing = drawing[:drawing.index("```")]
    rows = [line for line in drawing.splitlines() if line.strip()]
    assert [row[:26].strip() for row in rows] == [name for name, _ in reversed(LAYERS)]
    for row, (_, parts) in zip(rows, reversed(LAYERS)):
        assert [word for word in row[26:].split() if word in parts] == parts
