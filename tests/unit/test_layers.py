"""The import graph of vdreid/ and backends/ (read from the source with ast,
imports inside functions included): no module imports itself back through
others, and every import between rooms goes down a floor (docs/architecture.md,
"Floors"). A room is a package (``vdreid.eval``) or a top-level module
(``vdreid.optim``); the backends are one room each."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("vdreid", "vdreid_torch", "vdreid_mindspore", "vdreid_onnxruntime")

#: top floor first; a room imports only rooms on lower floors
FLOORS: tuple[tuple[str, ...], ...] = (
    ("vdreid.__main__",),
    ("vdreid.cli",),
    ("vdreid.workflows",),
    ("vdreid.report",),
    ("vdreid_torch", "vdreid_mindspore", "vdreid_onnxruntime", "vdreid.eval"),
    ("vdreid.registry", "vdreid.data"),
    ("vdreid.backend", "vdreid.config", "vdreid.interchange"),
    ("vdreid.trainer", "vdreid.presets"),
    ("vdreid.optim", "vdreid.reference", "vdreid.verified_export"),
    ("vdreid.losses", "vdreid.checkpoint", "vdreid.export_metadata"),
    ("vdreid.ops", "vdreid.spec", "vdreid.backend_inputs", "vdreid.outputs"),
    ("vdreid.errors", "vdreid"),
)
FLOOR = {room: len(FLOORS) - i for i, rooms in enumerate(FLOORS) for room in rooms}


def modules() -> dict[str, Path]:
    found = {}
    for path in [*ROOT.glob("vdreid/**/*.py"), *ROOT.glob("backends/*/**/*.py")]:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        parts = parts[1:] if parts[0] == "backends" else parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """First-party modules ``path`` imports (``from pkg import module`` names the module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
            names = [n if n in known else node.module for n in names]
        else:
            continue
        out |= {n for n in names if n.split(".")[0] in FIRST_PARTY}
    return out


def room(module: str) -> str:
    if module in FLOOR:
        return module
    parts = module.split(".")
    if parts[0] != "vdreid":
        return parts[0]
    return "vdreid" if parts[1] == "_version" else ".".join(parts[:2])  # the package's own


def graph() -> dict[str, set[str]]:
    found = modules()
    return {m: imports(p, set(found)) - {m} for m, p in found.items()}


def test_every_room_has_a_floor():
    assert {room(m) for m in graph()} <= set(FLOOR), sorted({room(m) for m in graph()} - set(FLOOR))


def test_every_import_between_rooms_goes_down():
    upward = [
        f"{m} -> {t}"
        for m, targets in graph().items()
        for t in targets
        if room(m) != room(t) and FLOOR[room(t)] >= FLOOR[room(m)]
    ]
    assert not upward, upward


def test_no_module_imports_itself_back():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = itertools.count()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = next(counter)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
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
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_check_sees_an_upward_import(tmp_path):
    # the checks can fail: a workflow import in a backend is an upward one
    path = tmp_path / "m.py"
    path.write_text("from vdreid.workflows import export\n")
    (target,) = imports(path, set(modules()))
    assert FLOOR[room(target)] > FLOOR[room("vdreid_torch.export")]
