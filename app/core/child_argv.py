"""The command line of Herd's own child processes, from a source tree or from a bundle.

From a source tree a child is ``python -m MODULE ARGS``. In a desktop bundle (PyInstaller)
``sys.executable`` is the ``herd`` program itself, which has no ``-m``: the child is
``herd --herd-child-module MODULE ARGS`` (or ``--herd-child-call MODULE:FUNCTION``), and
:func:`run_child` in ``app.__main__`` runs it before any argument parsing.
"""

from __future__ import annotations

import importlib
import runpy
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

MODULE_FLAG = "--herd-child-module"
CALL_FLAG = "--herd-child-call"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds ``app``
NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)
"""``creationflags`` of a child: no console window of its own on Windows (0 elsewhere)."""


def is_bundle() -> bool:
    """Whether Herd runs from a desktop bundle (PyInstaller sets ``sys.frozen``)."""
    return bool(getattr(sys, "frozen", False))


def _bundle_program() -> str:
    """The bundle's program for a child: on Windows ``herd.exe``, never ``herdw.exe``.

    The windowed ``herdw.exe`` has no standard streams for the child to talk through.
    """
    exe = Path(sys.executable)
    if sys.platform == "win32" and exe.stem.lower() == "herdw":
        return str(exe.with_name("herd.exe"))
    return str(exe)


def python_module_argv(module: str, *args: str) -> list[str]:
    """The argv that runs ``module`` as ``__main__`` with ``args`` in a fresh process."""
    if is_bundle():
        return [_bundle_program(), MODULE_FLAG, module, *args]
    return [sys.executable, "-m", module, *args]


def python_call_argv(module: str, function: str) -> list[str]:
    """The argv of an isolated child that exits with ``module.function()``'s return value.

    From source the child is ``python -I`` (no current folder, ``PYTHONPATH`` or user site)
    with this very copy of Herd first on its path, never an ``app`` found elsewhere; a
    bundle only ever runs its own modules.
    """
    if is_bundle():
        return [_bundle_program(), CALL_FLAG, f"{module}:{function}"]
    code = (
        f"import sys; sys.path.insert(0, {str(_SOURCE_ROOT)!r}); "
        f"from {module} import {function}; sys.exit({function}())"
    )
    return [sys.executable, "-I", "-c", code]


def run_child(argv: Sequence[str]) -> int | None:
    """Run the child that ``argv`` (``sys.argv[1:]``) asks for; None when it asks for none.

    Raises:
        SystemExit: the child's own exit (a module run as ``__main__`` ends with one).
    """
    if len(argv) >= 2 and argv[0] == MODULE_FLAG:
        module = argv[1]
        sys.argv = [module, *argv[2:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    if len(argv) == 2 and argv[0] == CALL_FLAG:
        module, _, function = argv[1].partition(":")
        result = getattr(importlib.import_module(module), function)()
        return int(result or 0)
    return None
