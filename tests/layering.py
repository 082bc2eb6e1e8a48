"""The package's import graph, read from the source (lazy imports inside functions included).

Used by ``tests/test_layering.py``; ``python tests/layering.py`` prints the package edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "restore"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Line numbers of ``if TYPE_CHECKING:`` bodies (imports there never run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The ``restore`` modules ``path`` imports (resolved relative imports; TYPE_CHECKING left out)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    nodes: Iterable[ast.AST] = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("restore"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            if base.startswith("restore"):
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in found if name in known and name != here}


def area(module: str) -> str:
    """The package a module belongs to: ``restore.models.csa.trainer`` -> ``models``; ``restore.metrics`` -> ``metrics``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "restore"


def graph(top_level_only: bool = False, by_area: bool = False) -> dict[str, set[str]]:
    """module (or package) -> the modules (packages) it imports."""
    edges: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        targets = imports(path, top_level_only)
        if by_area:
            a = area(source)
            edges.setdefault(a, set()).update(area(t) for t in targets if area(t) != a and area(t) != "restore")
        else:
            edges.setdefault(source, set()).update(targets)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
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
                found.append(sorted(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


if __name__ == "__main__":
    for source, targets in sorted(graph(by_area=True).items()):
        print(f"{source:12s} -> {', '.join(sorted(targets))}")
    print("package cycles:", cycles(graph(by_area=True)))
    print("module cycles (top-level imports):", cycles(graph(top_level_only=True)))
    print("module cycles (all imports):", cycles(graph()))
