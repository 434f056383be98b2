"""The layout rules of docs/ARCHITECTURE.md, checked on the code: a module over about 400 lines says why at its
top, and the packages' run-time imports form no cycle (imports under ``if TYPE_CHECKING:`` are annotations only
and are left out, as are imports inside functions, which run late on purpose)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("conformance", "reference_server", "reference_relay", "gateway_spec", "llm_mock", "benchmarks")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


@pytest.mark.parametrize("name", sorted(n for n, p in MODULES.items()
                                        if len(p.read_text(encoding="utf-8").splitlines()) > MAX_LINES))
def test_a_long_module_states_why_at_its_top(name):
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text(encoding="utf-8"))) or ""
    assert "400 lines" in doc, f"{MODULES[name].relative_to(ROOT)} is over {MAX_LINES} lines without a reason in its docstring"


def _runtime_imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports when it is imported (top level, outside TYPE_CHECKING blocks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names)

    visit(tree.body)
    # a module's own ancestor packages are already being imported when it runs (``from pkg import sub`` in a
    # module of pkg is the usual way to reach a sibling): not an edge
    return {m for m in out if m in MODULES and m != name and not name.startswith(m + ".")}


def test_no_import_cycle_at_run_time():
    graph = {name: _runtime_imports(name, path) for name, path in MODULES.items()}
    # a package imports its submodules' parents implicitly: importing a.b.c runs a and a.b first
    for name in list(graph):
        for target in list(graph[name]):
            parts = target.split(".")
            graph[name].update(p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in MODULES
                               and p != name and not name.startswith(p + "."))
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := walk(start)):
            pytest.fail("import cycle at run time: " + " -> ".join(cycle))
