"""The package's import graph: no cycles, and imports point downward only.

Every module under ``pymc_tracers/`` is parsed (``ast``, nothing is imported) and its
module-level imports (also inside module-level ``try``/``if`` blocks, but not under
``if TYPE_CHECKING:`` nor inside functions, where optional extras are imported) become edges
to the modules they name: ``from pymc_tracers.io.wcs import SkyFrame`` is an edge to
``pymc_tracers.io.wcs``, ``from pymc_tracers import io`` an edge to ``pymc_tracers.io``.
A package's ``__init__`` re-exporting its submodules is an edge from the package to them; a
submodule importing a sibling by its full name is an edge to that sibling only, not to the
package's ``__init__`` (which Python runs first, but which only re-exports).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "pymc_tracers"
PACKAGE = "pymc_tracers"

#: Layers, lowest first: a module may import its own layer and the layers below it, never a
#: layer above (the data flow of docs: physics -> PyMC layer -> inference -> edges).
LAYERS = [
    {"validation", "memory", "fitsutil", "atomic", "cosmology", "smooth"},
    {"grid", "psf", "profiles", "convolution", "numerics", "lensing"},
    {"forward", "baselines", "data", "io", "kinematics"},
    {"model"},
    {"simulate", "simulate_population"},
    {"plotting", "inference"},
    {"config"},
    {"survey"},
    {"cli"},
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _top_level_imports(tree: ast.Module):
    """Import nodes at module level, also inside try/if blocks, not under TYPE_CHECKING."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" in ast.unparse(node.test):
                stack.extend(node.orelse)
                continue
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                stack.extend(handler.body)


def _is_package(name: str, modules: dict) -> bool:
    return name in modules and modules[name].name == "__init__.py"


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports at module level}``."""
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = name if _is_package(name, modules) else name.rpartition(".")[0]
        for node in _top_level_imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = []
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    while target not in modules:  # pymc_tracers.x.attr -> pymc_tracers.x
                        target = target.rpartition(".")[0]
                    if target != name:
                        graph[name].add(target)
    return graph


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(name: str) -> int | None:
    if name == PACKAGE:
        return None  # the package's __init__ re-exports everything
    top = name.split(".")[1]
    for level, members in enumerate(LAYERS):
        if top in members:
            return level
    return None


def test_the_graph_sees_the_imports():
    """The walker finds known edges (so an empty graph cannot pass the tests below)."""
    graph = import_graph()
    assert "pymc_tracers.io.wcs" in graph["pymc_tracers.io.galaxy_data"]
    assert "pymc_tracers.numerics" in graph["pymc_tracers.cli.memory"]
    assert "pymc_tracers.io" in graph[PACKAGE]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert not cycles, f"import cycles: {cycles}"


def test_no_module_imports_the_package_top_level():
    """``pymc_tracers/__init__.py`` imports everything: importing it from inside the package
    hides the real dependencies (and makes a cycle)."""
    offenders = sorted(name for name, targets in import_graph().items() if PACKAGE in targets)
    assert not offenders, f"modules importing the package top level: {offenders}"


def test_every_module_has_a_layer():
    missing = sorted(
        {name.split(".")[1] for name in import_graph() if name != PACKAGE} - set().union(*LAYERS)
    )
    assert not missing, f"add these modules to a layer of tests/test_imports.py: {missing}"


@pytest.mark.parametrize("level", range(len(LAYERS)))
def test_imports_point_downward(level):
    graph = import_graph()
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in graph.items()
        if _layer(name) == level
        for target in targets
        if _layer(target) is not None and _layer(target) > level
    )
    assert not upward, f"imports to a higher layer: {upward}"


def test_submodules_are_reached_lazily_from_the_package():
    """User finding 8: ``pmt.simulate_population`` and ``pmt.plotting`` work without an explicit
    import (a fresh interpreter: nothing imported them before)."""
    import subprocess
    import sys

    code = (
        "import sys; import pymc_tracers as pmt\n"
        "assert 'pymc_tracers.simulate_population' not in sys.modules\n"
        "assert callable(pmt.simulate_population.population_sample)\n"
        "assert callable(pmt.plotting.plot_maps) and callable(pmt.survey.fit_sample)\n"
        "assert callable(pmt.config.run_fit) and 'plotting' in dir(pmt)\n"
        "try:\n    pmt.no_such_thing\nexcept AttributeError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "module 'pymc_tracers' has no attribute 'no_such_thing'" in done.stdout


def test_modules_moved_into_packages_keep_their_package_names():
    """``pmt.likelihood``, ``pmt.population``, ``pmt.sampling``... still reach the modules that
    moved into ``model/`` and ``inference/``."""
    import pymc_tracers as pmt

    assert pmt.likelihood is pmt.model.likelihood and pmt.binned is pmt.model.binned
    assert pmt.population.linear_relation is pmt.model.population.relations.linear_relation
    assert callable(pmt.population.hierarchical_lognormal) and callable(pmt.fields.gp_residual)
    assert callable(pmt.comparison.compare) and callable(pmt.kinematic_population.velocity_22)
    assert pmt.results is pmt.inference.results and pmt.results.Result is pmt.Result
    assert pmt.sampling.fit is pmt.fit and pmt.sampling.Fitter is pmt.Fitter
    assert pmt.sampling.SAMPLERS[0] == "nutpie" and "sampling" in dir(pmt)
