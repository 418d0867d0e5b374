"""The desktop bundle's entry point (PyInstaller): the same ``main`` as the ``herd`` command.

``app.__main__.main`` also runs the bundle's own child processes (the engine, the self-check,
the template probe): see :mod:`app.core.child_argv`.
"""

import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
