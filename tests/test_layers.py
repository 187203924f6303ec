"""The floor plan: tdexplain's subpackages are floors, and imports only go down.

engine (what a video model is, the one compiled pass) < methods < metrics < workbook <
interfaces, with `tdexplain.extras` (the optional-extras check) below them all and the package
root above them all. Every import between modules, at the top or inside a function, is read
from the source; within a floor any order is allowed but a cycle is not."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import tdexplain

PACKAGE = Path(tdexplain.__file__).resolve().parent
FLOORS = {"tdexplain.extras": 0, "tdexplain.engine": 1, "tdexplain.methods": 2, "tdexplain.metrics": 3,
          "tdexplain.workbook": 4, "tdexplain.interfaces": 5, "tdexplain": 6, "tdexplain.explain": 6}
# The package root and `explain` (the design's named entry points) gather names from their homes.
GATHERING = ("tdexplain", "tdexplain.explain")


def _module_name(path: Path) -> str:
    parts = ("tdexplain",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def floor(module: str) -> int:
    while module not in FLOORS:
        module = module.rpartition(".")[0]
    return FLOORS[module]


def imports_of(module: str) -> set[str]:
    """The tdexplain modules `module` imports, with `from . import x` resolved to the submodule x."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found.update(name for name in names if name in MODULES)
    return found - {module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_sits_on_a_floor():
    assert {floor(module) for module in MODULES} == set(FLOORS.values())
    assert [m for m, path in MODULES.items() if path.parent == PACKAGE and m not in FLOORS] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_down(module):
    upward = sorted(m for m in GRAPH[module] if floor(m) > floor(module))
    assert upward == [], f"{module} (floor {floor(module)}) imports from a floor above: {upward}"


def test_the_modules_import_one_another_without_cycles():
    """A cycle works only by the order of imports, and breaks on refactors."""
    def cycle_from(module, path):
        if module in path:
            return path[path.index(module):] + [module]
        for imported in GRAPH[module]:
            found = cycle_from(imported, path + [module])
            if found:
                return found
        return None

    for module in GRAPH:
        assert cycle_from(module, []) is None, " -> ".join(cycle_from(module, []))


def test_the_engine_imports_nothing_from_the_workbook():
    """Loading the engine does not load the demo models' builder or the scene drawing."""
    engine = [m for m in MODULES if floor(m) == FLOORS["tdexplain.engine"]]
    assert [(m, sorted(GRAPH[m])) for m in engine if any(floor(i) > 1 for i in GRAPH[m])] == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in GATHERING and not m.endswith("__main__")))
def test_every_public_name_has_one_home(module):
    """A module's `__all__` lists what it defines, never a name imported from another module of
    tdexplain: each public name has one import path (the package root's starting names aside)."""
    loaded = importlib.import_module(module)
    listed = getattr(loaded, "__all__", None)
    if MODULES[module].name == "__init__.py" and listed is None:
        return  # a floor's package file: its docstring, and the imports that register
    assert listed is not None, f"{module} has no __all__"
    source = ast.parse(MODULES[module].read_text())
    imported = {alias.asname or alias.name for node in ast.walk(source) if isinstance(node, ast.ImportFrom)
                and (node.level or (node.module or "").startswith("tdexplain")) for alias in node.names}
    assert sorted(set(listed) & imported) == [], f"{module} re-exports names of other modules"
    assert [name for name in listed if not hasattr(loaded, name)] == []


def test_the_root_and_explain_give_the_names_of_their_homes():
    """The starting names, and the design's public API (DESIGN.md: `from tdexplain import data,
    models, explain, contours, metrics, viz`; `explain.Explainer`, `explain.frame_importance`,
    `explain.DEFAULT_METHOD`), are the objects of their one home."""
    homes = {"Explainer": "tdexplain.engine.explainer", "Explanation": "tdexplain.engine.explainer",
             "METHODS": "tdexplain.methods", "DEFAULT_METHOD": "tdexplain.methods",
             "evaluate_methods": "tdexplain.metrics.evaluate", "load_model": "tdexplain.workbook.models",
             "read_video": "tdexplain.workbook.data", "explain_video": "tdexplain.interfaces.video"}
    assert sorted(tdexplain.__all__) == sorted(homes)
    for name, home in homes.items():
        assert getattr(tdexplain, name) is getattr(importlib.import_module(home), name)
    from tdexplain import contours, data, explain, metrics, models, viz

    assert (data, models) == (importlib.import_module("tdexplain.workbook.data"),
                              importlib.import_module("tdexplain.workbook.models"))
    assert (contours, viz) == (importlib.import_module("tdexplain.interfaces.contours"),
                               importlib.import_module("tdexplain.interfaces.viz"))
    assert metrics is importlib.import_module("tdexplain.metrics")
    assert (explain.Explainer, explain.DEFAULT_METHOD) == (tdexplain.Explainer, tdexplain.DEFAULT_METHOD)
    assert explain.frame_importance is importlib.import_module("tdexplain.methods.frames").frame_importance
    with pytest.raises(AttributeError, match="has no attribute 'shapes'"):
        tdexplain.shapes  # noqa: B018 - the flat modules of before are gone
