"""The layers import only downward, and no modules import each other in a circle.

Every module of the packages and scripts is parsed with ``ast``, function bodies included (an
import inside a function is still an import), and mapped to its layer:

1. ``processors/core/``: errors, atomic writes, config schema and checks, checkpoint I/O, registry;
2. ``processors/``: audio, DSP, metrics, classical vocoders;
3. ``datasets/``;
4. ``models/``: inpainters, vocoder nets, the reassigned phase corrector;
5. ``training/``: loop, losses, distributed, full config checks;
6. ``training/evaluation/``: benchmarks, baselines, scoring, reports, demo;
7. ``scripts/``.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("processors", "datasets", "models", "training", "scripts")
# (module prefix, layer): the longest matching prefix wins
LAYERS = (("processors.core", 1), ("processors", 2), ("datasets", 3), ("models", 4), ("training", 5),
          ("training.evaluation", 6), ("scripts", 7))


def layer_of(module: str) -> int:
    """A module's layer; a package's ``__init__`` sits with the lowest of its subpackages, since
    importing any module below it runs it first."""
    inside = [layer for prefix, layer in LAYERS if prefix == module or prefix.startswith(module + ".")]
    if inside:
        return min(inside)
    return max((p for p in LAYERS if module.startswith(p[0] + ".")), key=lambda p: len(p[0]))[1]


def module_sources(root: Path = ROOT) -> dict[str, tuple[str, bool]]:
    """``{dotted name: (source, is package)}`` for every .py file of the packages and scripts."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_package else parts)] = (path.read_text(encoding="utf-8"), is_package)
    return out


def imports_of(module: str, source: str, is_package: bool, known: set[str]) -> list[tuple[str, int]]:
    """(imported module of ``known``, line) for every import statement anywhere in ``source``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" for a in node.names]
            if any(name not in known for name in names):    # 'from pkg import submodule' alone skips pkg
                names.insert(0, base)
        else:
            continue
        found = []
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.append(name)
        out += [(name, node.lineno) for name in dict.fromkeys(found)]
    return out


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, list[tuple[str, int]]]:
    known = set(sources)
    return {m: imports_of(m, src, is_pkg, known) for m, (src, is_pkg) in sources.items()}


def upward_imports(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    return sorted(f"{m} (layer {layer_of(m)}) line {line} imports {t} (layer {layer_of(t)})"
                  for m, edges in graph.items() for t, line in edges if layer_of(t) > layer_of(m))


def import_cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph.get(v, ()):
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_points_up_a_layer():
    assert upward_imports(import_graph(module_sources())) == []


def test_no_import_cycles():
    assert import_cycles(import_graph(module_sources())) == []


def test_every_module_has_a_layer():
    modules = module_sources()
    assert {"processors.core.errors", "processors.vocoders", "models.vocoder_nets", "training.trainer",
            "training.evaluation.report", "scripts.train"} <= set(modules)
    assert [layer_of(m) for m in ("processors", "processors.core.config", "processors.mel", "datasets.sources",
                                  "models.registry", "training", "training.losses", "training.evaluation",
                                  "training.evaluation.demo", "scripts.demo")] == [1, 1, 2, 3, 4, 5, 5, 6, 6, 7]


def test_the_checks_catch_an_upward_import_in_a_function_and_a_cycle():
    sources = {
        "processors.mel": ("def f():\n    from models.registry import MODELS\n", False),
        "models.registry": ("from .unet import UNet\n", False),
        "models.unet": ("import models.registry\n", False),
        "training.evaluation": ("from . import report\n", True),
        "training.evaluation.report": ("", False),
    }
    graph = import_graph(sources)
    assert upward_imports(graph) == ["processors.mel (layer 2) line 2 imports models.registry (layer 4)"]
    assert import_cycles(graph) == [["models.registry", "models.unet"]]
    assert graph["training.evaluation"] == [("training.evaluation.report", 1)]
