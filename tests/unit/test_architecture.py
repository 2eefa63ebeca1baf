"""The library's shape, checked on the source: no import loops in `index/`, arrows pointing down
the stages, and front ends that use only the public surface (`from index import …`).

Imports are read with `ast`, including those inside functions (a loop "held together" by a
function-local import is still a loop); only `if TYPE_CHECKING:` blocks are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "index"
FRONT_ENDS = ("service", "qiao", "scripts")

# What the vector, lexical, alignment, search and storage code must never load: the model.
MODEL_FREE = ("index.indexes", "index.align", "index.search", "index.store", "index.ingest",
              "index.backends")
# The stage order, lowest first: a module may import its own layer or lower ones only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("index.errors", "index.records", "index.files", "index.config", "index.embed", "index.vectors",
     "index.codec"),
    ("index.ingest", "index.indexes", "index.model", "index.align"),
    ("index.store",),
    ("index.search",),
    ("index.compose",),
    ("index.view", "index.writer", "index.backends"),
    ("index.retriever", "index.answering", "index.eval"),
    ("index.backend",),
    ("index",),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import in `path`, outside TYPE_CHECKING blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [alias.name for alias in node.names]


def library_modules() -> dict[str, Path]:
    return {module_name(p): p for p in LIBRARY.rglob("*.py")}


def library_graph() -> dict[str, set[str]]:
    """index module → the index modules it imports (a name that is a submodule counts as it)."""
    modules = library_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for _, target, names in imported_modules(path):
            if target != "index" and not target.startswith("index."):
                continue
            hits = {f"{target}.{n}" for n in names if f"{target}.{n}" in modules}
            graph[name] |= hits or ({target} if target in modules else set())
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def layer_of(module: str) -> int:
    best, found = -1, -1
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), level
    return found


def test_the_library_has_no_import_cycle() -> None:
    graph = library_graph()
    graph.pop("index", None)  # the public surface imports everything lazily, by design
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_loop() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_library_module_has_a_layer() -> None:
    unplaced = [m for m in library_modules() if layer_of(m) < 0]
    assert unplaced == []


def test_imports_point_down_the_stages() -> None:
    upward = [
        f"{source} imports {target}"
        for source, targets in library_graph().items()
        if source != "index"
        for target in targets
        if layer_of(target) > layer_of(source)
    ]
    assert upward == []


@pytest.mark.parametrize("package", MODEL_FREE)
def test_vector_lexical_and_alignment_code_never_loads_the_model(package: str) -> None:
    graph = library_graph()
    offenders = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        if source == package or source.startswith(package + ".")
        for target in targets
        if target.startswith("index.model")
    ]
    assert offenders == []


def test_the_library_never_imports_the_web_stack() -> None:
    offenders = [
        f"{module}:{line} imports {target}"
        for module, path in library_modules().items()
        for line, target, _ in imported_modules(path)
        if target.split(".")[0] in ("fastapi", "starlette", "uvicorn", "service")
    ]
    assert offenders == []


def internal_imports(root: Path) -> list[str]:
    """`from index.<x> import` / `import index.<x>` lines in the Python files under `root`."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        for line, target, _ in imported_modules(path):
            if target.startswith("index."):
                found.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    return found


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_front_ends_import_only_the_public_surface(front_end: str) -> None:
    assert internal_imports(REPO / front_end) == []


def test_the_public_surface_check_catches_an_internal_import(tmp_path: Path) -> None:
    (tmp_path / "routes.py").write_text("from index.search.rank import Filters\n")
    (tmp_path / "fine.py").write_text("from index import Retriever\n")
    assert len(internal_imports_under(tmp_path)) == 1


def internal_imports_under(root: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        found += [t for _, t, _ in imported_modules(path) if t.startswith("index.")]
    return found


def test_public_names_resolve() -> None:
    import index

    missing = [name for name in index.__all__ if getattr(index, name, None) is None]
    assert missing == []
    assert sorted(index.__all__) == sorted(index._HOMES)


def test_the_stdio_mcp_server_does_not_load_the_web_stack() -> None:
    # The MCP SDK brings starlette for its own HTTP transport; FastAPI and our app stay out.
    import subprocess
    import sys

    probe = (
        "import sys, service.mcp.tools, service.llm, service.settings; "
        "print(sorted(m for m in ('fastapi', 'service.app', 'service.routes', 'service.state') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


def test_qdrant_client_is_imported_in_one_module_only() -> None:
    """The Qdrant backend's dependencies stay behind its modules: nothing else loads them."""
    importers = {name for name, path in library_modules().items()
                 for _, target, _ in imported_modules(path)
                 if target.split(".")[0] in ("qdrant_client", "qdrant_edge")}
    assert importers and all(name.startswith("index.backends.qdrant") for name in importers)
