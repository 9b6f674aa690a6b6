"""The import rule of recnb's layers (see the package docstring): a module never imports from a layer above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recnb"
#: Lowest first. A module may import from its own layer and the ones before it.
LAYERS = ["base", "data", "evaluation", "models", "serve", "viz", "teaching", "cli"]
BASE = {"recnb", "recnb.errors", "recnb.config", "recnb.files", "recnb.films"}


def layer_of(module: str) -> str:
    """``recnb.models.sasrec`` -> ``models``; ``recnb.errors`` -> ``base``; ``recnb.cli`` -> ``cli``."""
    if module in BASE:
        return "base"
    parts = module.split(".")
    if parts[1] in ("cli", "__main__"):
        return "cli"
    assert parts[1] in LAYERS, f"{module} is in no layer: add it to the package docstring and LAYERS"
    return parts[1]


def imported_modules(source: str) -> list[str]:
    """Every recnb module a source imports, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError("relative import: recnb uses absolute imports, so the layer is visible")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "recnb":
            # `from recnb import __version__` is the base; `from recnb.models import sasrec` is models
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "recnb"]
    return found


def violations(module: str, source: str) -> list[str]:
    here = LAYERS.index(layer_of(module))
    return [f"{module} ({LAYERS[here]}) imports {target} ({layer_of(target)})"
            for target in imported_modules(source) if LAYERS.index(layer_of(target)) > here]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_a_layer_above_it(path):
    module = module_name(path)
    if module == "recnb":
        return  # the package itself re-exports the names learners use most, from every layer
    assert violations(module, path.read_text()) == []


def test_the_rule_catches_a_lower_layer_importing_a_higher_one():
    assert violations("recnb.data.split", "from recnb.models.training import load_checkpoint\n") == [
        "recnb.data.split (data) imports recnb.models.training (models)"]
    inside_a_function = "def f():\n    from recnb.viz.data_plots import set_style\n"
    assert violations("recnb.evaluation.evaluator", inside_a_function)
    assert violations("recnb.models.sasrec", "import recnb.teaching.widgets\n")
    assert violations("recnb.viz.data_plots", "from recnb.models.sasrec import SASRec\n") == []  # downwards: fine
    with pytest.raises(AssertionError, match="relative import"):
        imported_modules("from ..models import sasrec\n")


def test_every_module_is_in_a_layer_and_every_layer_exists():
    for path in MODULES:
        layer_of(module_name(path))
    for layer in LAYERS[1:-1]:   # a package, or one module for a layer that small (recnb/serve.py)
        assert (PACKAGE / layer / "__init__.py").is_file() or (PACKAGE / f"{layer}.py").is_file(), layer


def test_no_test_imports_a_private_name_of_recnb():
    """Tests use what users can use: a private name may change without notice."""
    tests = Path(__file__).resolve().parent
    found = []
    for path in sorted(tests.rglob("*.py")):  # every folder: tests/data, tests/models, ...
        name = path.relative_to(tests).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("recnb"):
                found += [f"{name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                base = node.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name) and base.id == "recnb":
                    found.append(f"{name}: recnb...{node.attr}")
    assert found == []
