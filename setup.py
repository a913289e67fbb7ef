"""Build rsp: the modules listed in native_modules.txt are compiled with mypyc, the rest stays Python.

Metadata lives in pyproject.toml; this file only adds `ext_modules`. mypyc type-checks the listed modules
with the project's mypy settings ([tool.mypy] in pyproject.toml, `mypy_path = "src"`), so it runs from the
repo root. Its shared support library (`<hash>__mypyc.*.so`, a top-level module) lands in src/ on an
in-place build, beside the `rsp` package, where the editable install's path entry finds it.

Pure Python (no extension modules, a warning on stderr) when RSP_PURE_PYTHON=1 or mypyc is not importable.
In-place development builds: scripts/build-native (make-like; it also removes stale compiled files).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
NATIVE_MODULES = ROOT / "native_modules.txt"
# setup.py commands that compile; metadata-only runs (egg_info, dist_info, sdist) skip mypyc's type check.
BUILD_COMMANDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install", "bdist_egg"}


def listed_sources() -> list[str]:
    """Source paths from native_modules.txt: `#` comments and blank lines dropped."""
    lines = (line.split("#", 1)[0].strip() for line in NATIVE_MODULES.read_text().splitlines())
    return [line for line in lines if line]


def native_extensions() -> list[Extension]:
    if not BUILD_COMMANDS.intersection(sys.argv[1:]):
        return []
    if os.environ.get("RSP_PURE_PYTHON") == "1":
        print("setup.py: RSP_PURE_PYTHON=1: building rsp as pure Python (no compiled modules)", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        print(f"setup.py: WARNING: mypyc is not importable ({exc}): building rsp as pure Python",
              file=sys.stderr)
        return []
    sources = listed_sources()
    if not sources:
        return []
    os.chdir(ROOT)  # mypy reads [tool.mypy] from ./pyproject.toml and resolves mypy_path = "src" from here
    extensions: list[Extension] = mypycify(["--config-file", "pyproject.toml", *sources], opt_level="3")
    return extensions


setup(ext_modules=native_extensions())
