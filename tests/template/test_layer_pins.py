"""The SharedLayer's pins are the dev set's, and name exactly what changelake and the handlers import.

No SAM CLI needed: these read the two locks and the sources (test_sam_build.py checks the built layer).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

from tests.template.pins import DEV_LOCK, LAYER_LOCK, ROOT, normalise, pinned

#: The code that runs in Lambda: the layer's package and the handlers.
LAMBDA_SOURCES = (ROOT / "shared" / "changelake", ROOT / "functions")
FIRST_PARTY = {"changelake", "functions", "__future__"}


def imported_modules(sources: tuple[Path, ...]) -> set[str]:
    """The top-level modules the sources import (at module level or inside functions), stdlib aside."""
    modules: set[str] = set()
    for source in sources:
        for path in source.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return {module for module in modules - FIRST_PARTY if module not in sys.stdlib_module_names}


def distributions_of(modules: set[str]) -> set[str]:
    """The projects (as installed in the dev environment) that provide these modules."""
    providers = packages_distributions()
    missing = sorted(module for module in modules if module not in providers)
    assert not missing, f"not installed in the dev environment: {missing}"
    return {normalise(project) for module in modules for project in providers[module]}


def layer_requirements() -> set[str]:
    """The projects shared/pyproject.toml names (the layer's libraries; their own needs come along)."""
    with (ROOT / "shared" / "pyproject.toml").open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    return {normalise(Requirement(dependency).name) for dependency in dependencies}


def test_the_layer_pins_the_dev_sets_versions() -> None:
    # GIVEN the layer's lock (for python3.13 on arm64) and the dev set's (what the tests run)
    layer, dev = pinned(LAYER_LOCK), pinned(DEV_LOCK)

    # WHEN every layer pin is looked up in the dev set
    differences = {
        name: (version, dev.get(name)) for name, version in layer.items() if dev.get(name) != version
    }

    # THEN each one is there at the same version (DuckDB included: the Parquet tests run what Lambda runs)
    assert layer
    assert differences == {}, "(layer, dev set) versions; run `make lock`"


def test_every_library_the_layer_names_is_imported_by_the_lambda_code() -> None:
    # GIVEN the libraries shared/pyproject.toml names for the layer
    named = layer_requirements()

    # WHEN the projects that changelake and the handlers import are collected
    imported = distributions_of(imported_modules(LAMBDA_SOURCES))

    # THEN the layer names nothing the code never imports
    assert named, "shared/pyproject.toml names no dependency"
    assert named - imported == set()


def test_every_library_the_lambda_code_imports_is_in_the_layer() -> None:
    # GIVEN the projects that changelake and the handlers import
    imported = distributions_of(imported_modules(LAMBDA_SOURCES))

    # WHEN they are looked up in the layer's lock
    layer = pinned(LAYER_LOCK)

    # THEN Lambda finds every one of them (none is left to whatever the runtime happens to ship)
    assert imported - set(layer) == set()
