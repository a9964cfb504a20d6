"""The layering of s3pump's modules: no import cycle, static and at run time (issue 25).

The static graph holds every ``import``/``from`` statement of ``src/s3pump`` that runs, at module
level or in a function (a lazy import is still an edge: it closes a cycle the first time it runs),
but not those under ``if TYPE_CHECKING:``. Then each export module is imported with no other s3pump
module loaded, so an order that only works because another module was loaded first shows up.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import s3pump

SRC = Path(s3pump.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The s3pump modules that ``name`` imports (statements under ``if TYPE_CHECKING:`` left out)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            for child in getattr(node, "orelse", []):
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in mods else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in mods and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_finder_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_s3pump_modules() -> None:
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    assert "s3pump.jobs.export_cluster" in graph["s3pump.jobs.export"]  # a lazy import counts
    assert _cycles(graph) == []


def test_the_export_cluster_job_uses_only_public_names_of_the_export() -> None:
    text = (SRC / "jobs" / "export_cluster.py").read_text(encoding="utf-8")
    assert "._" not in text and "_ExportJob" not in text
    assert "s3pump.jobs.export" not in _imports("s3pump.jobs.export_cluster", SRC / "jobs" / "export_cluster.py",
                                                 _modules())


def test_the_export_modules_import_alone() -> None:
    """Each module of the export (its verbs, ``export/``, ``sources/``) first, with no other s3pump module
    loaded (one process for all; the static graph above covers every module)."""
    names = [n for n in _modules() if n.startswith(("s3pump.export.", "s3pump.jobs.export", "s3pump.sources."))]
    script = (
        "import importlib, sys\n"
        f"names = {names!r}\n"
        "bad = []\n"
        "for n in names:\n"
        "    for m in [k for k in sys.modules if k == 's3pump' or k.startswith('s3pump.')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except ImportError as e:\n"
        "        bad.append(f'{n}: {e}')\n"
        "print('\\n'.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""
