"""The layers hold: every import in src/ (at the top of a module or inside a function) is checked against
the picture in docs/architecture.json — its parts (files and folders) and the arrows that must never exist.

The picture is read at test time, so the drawing and the check stay one. `python -m
tests.foundation.test_architecture` prints every violation, the import cycles between domains and the count of
imports written inside functions.

``DEBTS`` lists the arrows against the picture that are known and not yet mended; a new one fails the test, and
so does a listed one that is gone (take it off the list: the list only shrinks).
"""

from __future__ import annotations

import ast
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = "adaptive_engine"
PICTURE = ROOT / "docs" / "architecture.json"
DOMAINS = f"{PACKAGE}.server.domains"
SERVER = f"{PACKAGE}.server"
# The web frameworks belong to the API layers and the app; no part below them imports one.
API_FRAMEWORKS = ("strawberry", "fastapi", "starlette")
BELOW_THE_API = ("SDK", "Recipe", "Domains", "Inference", "Jobs", "Notify", "DB", "Kernel")

# (importing module, imported module): known arrows against the picture, each with what mends it. None today:
# an arrow against the picture fails the test.
DEBTS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module (the deepest one that exists in src/), dotted
    line: int
    in_function: bool

    def where(self) -> str:
        return f"{self.source.replace('.', '/')}.py:{self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest module of src/ that `name` (a module, or a module plus an attribute) lands in."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                # `from pkg import sub` imports the submodule when there is one.
                names = [f"{base}.{alias.name}" for alias in child.names if alias.name != "*"] or [base]
            for name in names:
                target = _resolve(name, modules) if name.startswith(PACKAGE) else None
                if target and target != module:
                    found.append(Import(module, target, child.lineno, inside))
            visit(child, inside)

    visit(tree, False)
    return found


def all_imports() -> list[Import]:
    modules = _modules()
    return [imp for module, path in modules.items() for imp in _imports_of(module, path, modules)]


def load_picture() -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
    picture = json.loads(PICTURE.read_text())
    parts = {name: part["is"] for name, part in picture["parts"].items()}
    never = [(a, b, why) for a, b, why in picture["never"]]
    return parts, never


def part_of(module: str, parts: dict[str, list[str]]) -> str | None:
    """The part a module belongs to: the one whose file or folder names it most closely."""
    modules = _modules()
    path = modules[module].relative_to(ROOT).as_posix()
    best: tuple[int, str] | None = None
    for name, members in parts.items():
        for member in members:
            if path == member or (member.endswith("/") and path.startswith(member)):
                if best is None or len(member) > best[0]:
                    best = (len(member), name)
    return best[1] if best else None


def violations() -> dict[tuple[str, str], str]:
    """Every import along a `never` arrow: (importing module, imported module) -> where and why it is wrong."""
    parts, never = load_picture()
    forbidden = {(a, b): why for a, b, why in never}
    modules = _modules()
    part = {module: part_of(module, parts) for module in modules}
    found: dict[tuple[str, str], str] = {}
    for imp in all_imports():
        arrow = (part[imp.source], part[imp.target])
        if arrow in forbidden:
            found.setdefault(
                (imp.source, imp.target),
                f"{imp.where()}: {arrow[0]} -> {arrow[1]} ({forbidden[arrow]}): imports {imp.target}"
                + (" inside a function" if imp.in_function else ""),
            )
    return found


def framework_imports() -> list[str]:
    """Imports of a web framework from a part below the API layers."""
    parts, _ = load_picture()
    found = []
    for module, path in _modules().items():
        part = part_of(module, parts)
        if part not in BELOW_THE_API:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            found += [
                f"{path.relative_to(SRC)}:{node.lineno}: {part} imports {n}"
                for n in names
                if n.split(".")[0] in API_FRAMEWORKS
            ]
    return found


def _domain(module: str) -> str | None:
    if module.startswith(DOMAINS + "."):
        return module[len(DOMAINS) + 1 :].split(".")[0]
    return None


def domain_cycles() -> list[list[str]]:
    """Cycles between domain folders through their services (the Domains part; GraphQL types of one domain may
    well name another's, as the schema's graph does): the groups of domains that reach each other."""
    parts, _ = load_picture()
    in_domains = {m for m in _modules() if part_of(m, parts) == "Domains"}
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in all_imports():
        if imp.source not in in_domains or imp.target not in in_domains:
            continue
        a, b = _domain(imp.source), _domain(imp.target)
        if a and b and a != b:
            graph[a].add(b)
    # Tarjan's algorithm: each component with more than one domain is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(components)


def test_every_part_of_the_picture_names_files_that_exist() -> None:
    parts, never = load_picture()
    for name, members in parts.items():
        for member in members:
            assert (ROOT / member).exists(), f"{name}: {member} does not exist"
    for a, b, _ in never:
        assert a in parts and b in parts, (a, b)


def test_no_import_runs_along_an_arrow_that_must_never_exist() -> None:
    found = violations()
    new = [line for arrow, line in sorted(found.items()) if arrow not in DEBTS]
    assert not new, "imports against docs/architecture.json:\n" + "\n".join(new)
    mended = sorted(f"{a} -> {b}" for a, b in DEBTS if (a, b) not in found)
    assert not mended, "mended, take them off DEBTS:\n" + "\n".join(mended)


def test_the_client_and_the_recipe_runtime_never_import_the_server() -> None:
    parts, _ = load_picture()
    outside = {m for m in _modules() if part_of(m, parts) in ("SDK", "Recipe")}
    wrong = [
        i.where() + f": imports {i.target}"
        for i in all_imports()
        if i.source in outside and i.target.startswith(SERVER)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_part_below_the_api_layers_imports_a_web_framework() -> None:
    found = framework_imports()
    assert not found, "\n".join(found)


def test_domains_import_each_other_without_cycles() -> None:
    assert domain_cycles() == []


def test_the_checker_sees_imports_inside_functions_and_relative_ones() -> None:
    # The checker itself must not go blind: a known import inside a function and a known relative import.
    imports = all_imports()
    assert any(i.in_function for i in imports)
    assert any(i.source == f"{PACKAGE}.server.app" and i.target.startswith(f"{PACKAGE}.server.") for i in imports)
    parts, _ = load_picture()
    assert part_of(f"{DOMAINS}.jobs.graphql", parts) == "GraphQL"
    assert part_of(f"{DOMAINS}.jobs.service", parts) == "Domains"
    assert part_of(f"{PACKAGE}.server.errors", parts) == "Kernel"


if __name__ == "__main__":
    for (source, target), line in sorted(violations().items()):
        print(("known: " if (source, target) in DEBTS else "") + line)
    for line in framework_imports():
        print(line)
    print("domain cycles:", domain_cycles())
    imports = all_imports()
    print("imports inside functions (to adaptive_engine):", sum(i.in_function for i in imports))
