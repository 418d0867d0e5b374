"""The layering rules of DESIGN.md, checked on the source: who may import what, who prints."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
CORE = APP / "core"

# foreign library -> the only places under app/ that may import it
OWNERS = {
    "PySide6": ("app/ui/",),
    "shiboken6": ("app/ui/",),
    "llama_cpp": (
        "app/core/engine/worker.py",
        "app/core/engine/llama_ext.py",
        "app/core/engine/llama_vision.py",
        "app/core/engine/llama_devices.py",
        "app/core/engine/backends.py",  # a portable build's backend modules (the bundles)
    ),
    "huggingface_hub": ("app/core/hub/",),
    "starlette": ("app/server/",),
    "sse_starlette": ("app/server/",),
    "uvicorn": ("app/server/",),
}
# printing is the command line's job
PRINT_ALLOWED = ("app/cli.py", "app/plan_cli.py", "app/doctor_cli.py")


def _sources(folder: Path) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)


def _imported_roots(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """Top-level package of every absolute import, with its line (lazy imports included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno
        elif (  # importlib.import_module("x") / __import__("x") with a literal name
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            yield node.args[0].value.split(".")[0], node.lineno


def test_sources_parse() -> None:
    assert len(list(_sources(APP))) > 10  # the walk below really sees the package


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_foreign_library_has_one_owner(library: str) -> None:
    owners = OWNERS[library]
    offenders = [
        f"{rel}:{line}"
        for rel, tree in _sources(APP)
        for root, line in _imported_roots(tree)
        if root == library and not rel.startswith(owners)
    ]
    assert not offenders, f"{library} is imported outside {owners}: {offenders}"


def test_core_never_imports_qt_in_source() -> None:
    offenders = [
        f"{rel}:{line} imports {root}"
        for rel, tree in _sources(CORE)
        for root, line in _imported_roots(tree)
        if root in {"PySide6", "shiboken6", "PyQt5", "PyQt6", "PySide2", "qtpy", "pytestqt"}
    ]
    assert not offenders


def test_no_print_outside_the_cli() -> None:
    offenders = [
        f"{rel}:{node.lineno}"
        for rel, tree in _sources(APP)
        if rel not in PRINT_ALLOWED
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert not offenders, f"use logging, not print: {offenders}"


_IMPORT_ALL_CORE = """
import importlib, json, pkgutil, sys
import app.core
names = sorted(m.name for m in pkgutil.walk_packages(app.core.__path__, "app.core."))
engine_side = {
    "app.core.engine.worker",
    "app.core.engine.llama_ext",
    "app.core.engine.llama_vision",
    "app.core.engine.llama_devices",
    "app.core.engine.backends",
    "app.core.engine.selfcheck_child",
}
for name in names:
    if name not in engine_side:
        importlib.import_module(name)
app_side = sorted(sys.modules)
for name in sorted(engine_side & set(names)):
    importlib.import_module(name)
print(json.dumps({"names": names, "app_side": app_side, "all": sorted(sys.modules)}))
"""


def test_importing_all_of_core_loads_no_qt() -> None:
    """Every app.core module imported in a fresh interpreter: Qt never comes along.

    Also, the app side of the engine (everything but the worker and the llama_* modules) must not
    load llama_cpp: llama.cpp runs only in the engine process.
    """
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL_CORE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert "app.core.engine.client" in loaded["names"]
    assert not [m for m in loaded["all"] if m.split(".")[0] in {"PySide6", "shiboken6"}]
    assert "llama_cpp" not in loaded["app_side"]


def test_import_linter_contracts_hold() -> None:
    """The layer contracts in pyproject.toml ([tool.importlinter]), checked by import-linter."""
    tool = Path(sys.executable).with_name("lint-imports")
    if not tool.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [str(tool), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 kept, 0 broken" in result.stdout
