"""The package's import graph: no cycle among jinit's modules, and the tree engine (``jinit._tree``)
below the catalog: it imports the value type, the samplers and the checks, never an initializer
family or wrapper. Read from the source with ``ast``, every import counted (a function's, and
one under ``TYPE_CHECKING``), so an import hidden in a function cannot close a cycle."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "jinit"

# What the engine may import besides itself: the value type, the samplers, and the helpers
# that know no initializer.
BELOW_THE_CATALOG = (
    "jinit._value",
    "jinit._rng",
    "jinit._typing",
    "jinit._checks",
    "jinit._jax_compat",
)


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _graph() -> dict[str, set[str]]:
    """Each jinit module -> the jinit modules it imports (``from jinit import _x`` is ``_x``)."""
    modules, graph = _modules(), {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                for a in node.names:
                    if f"{base}.{a.name}" in modules:
                        edges.add(f"{base}.{a.name}")
                    elif base in modules:
                        edges.add(base)
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_reads_the_imports():
    """The reader sees the forms jinit uses: a package's module, a name from a module, and a
    function-level import."""
    graph = _graph()
    assert "jinit._tree.api" in graph["jinit._tree"]
    assert "jinit._value" in graph["jinit._core"]
    assert "jinit._rng.portable" in graph["jinit._rng.draws"]


def test_no_import_cycle():
    assert _cycles(_graph()) == []


def test_engine_is_below_the_catalog():
    """Everything ``jinit._tree`` imports, directly or not, is the engine itself or below it."""
    graph = _graph()
    allowed = lambda m: (
        m.startswith(("jinit._tree.", *(b + "." for b in BELOW_THE_CATALOG)))
        or (m in ("jinit._tree", *BELOW_THE_CATALOG))
    )
    reached: dict[str, str] = {}  # module -> the engine module whose imports reach it
    todo = [(m, m) for m in graph if m == "jinit._tree" or m.startswith("jinit._tree.")]
    while todo:
        m, via = todo.pop()
        for n in graph[m]:
            if n not in reached:
                reached[n] = via
                todo.append((n, via))
    above = {m: via for m, via in reached.items() if not allowed(m)}
    assert above == {}, f"the engine reaches catalog modules (module: from): {above}"
