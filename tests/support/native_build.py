"""The test session's view of the mypyc build: which modules native_modules.txt lists, which of their
compiled files are stale, and whether the build matches what the run expects.

- `listed_sources(root)`      -> source paths listed in ROOT/native_modules.txt ("src/rsp/http1/fields.py")
- `module_name(source)`       -> "rsp.http1.fields"
- `stale_modules(root)`       -> listed modules whose compiled file (.so beside the .py) is older than the .py
- `session_problem(root, env)` -> why the session must not run (stale .so, RSP_EXPECT_PURE=1 or
                                 RSP_EXPECT_COMPILED=1 not met), or None; tests/conftest.py exits with it.
"""

from __future__ import annotations

import importlib
import importlib.machinery
from collections.abc import Mapping
from pathlib import Path

from rsp.native import compiled_modules, is_extension_file

NATIVE_MODULES = "native_modules.txt"
REPO_ROOT = Path(__file__).resolve().parents[2]


def listed_sources(root: Path = REPO_ROOT) -> list[str]:
    """Paths from ROOT/native_modules.txt, `#` comments and blank lines dropped (same rule as setup.py)."""
    lines = (line.split("#", 1)[0].strip() for line in (root / NATIVE_MODULES).read_text().splitlines())
    return [line for line in lines if line]


def module_name(source: str) -> str:
    path = source.removeprefix("src/").removesuffix(".py").removesuffix("/__init__")
    return path.replace("/", ".")


def compiled_files(py: Path) -> list[Path]:
    """Extension module files for source `py` in its directory (`fields.cpython-311-x86_64-linux-gnu.so`)."""
    return [py.with_name(py.stem + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES
            if py.with_name(py.stem + suffix).exists()]


def stale_modules(root: Path = REPO_ROOT) -> list[str]:
    """Listed modules with a compiled file older than their .py: the interpreter would run old code."""
    stale = []
    for source in listed_sources(root):
        py = root / source
        if py.exists() and any(so.stat().st_mtime < py.stat().st_mtime for so in compiled_files(py)):
            stale.append(module_name(source))
    return stale


def session_problem(root: Path, env: Mapping[str, str]) -> str | None:
    stale = stale_modules(root)
    if stale:
        return f"stale compiled module{'s' * (len(stale) > 1)} {', '.join(stale)}: run scripts/build-native"
    if env.get("RSP_EXPECT_PURE") == "1":
        compiled = compiled_modules()
        if compiled:
            return f"RSP_EXPECT_PURE=1 but these rsp modules are compiled: {', '.join(compiled)}"
    if env.get("RSP_EXPECT_COMPILED") == "1":
        missing = []
        for source in listed_sources(root):
            module = importlib.import_module(module_name(source))
            if not is_extension_file(module.__file__):
                missing.append(f"{module.__name__} ({module.__file__})")
        if missing:
            return (f"RSP_EXPECT_COMPILED=1 but these listed modules run as Python: {', '.join(missing)}: "
                    "run scripts/build-native")
    return None
