"""Which rsp modules run compiled: mypyc extension modules, or the plain Python source.

The build (setup.py, scripts/build-native) compiles the modules listed in the repo's native_modules.txt
into extension modules next to their `.py` files; the import system prefers an extension module to a
source file in the same directory, so those run compiled, and everything runs as Python when no
extension file is there (RSP_PURE_PYTHON=1, no C compiler, or a copy of the sources first on sys.path).
An installed rsp has no repo root, so the list is not read here: the package directories are scanned for
extension files instead, and each one found is imported to see whether it is what the import system uses.

`python -m rsp.native` prints `build_description()`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import rsp

PACKAGE = "rsp"
# Longest first, so that "x.cpython-311-x86_64-linux-gnu.so" is not read as module "x.cpython-311-...".
_EXTENSION_SUFFIXES = tuple(sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True))


def is_extension_file(path: str | None) -> bool:
    return path is not None and path.endswith(_EXTENSION_SUFFIXES)


def extension_module_names(package: str, package_dirs: Iterable[str]) -> list[str]:
    """Dotted names of the extension module files under `package_dirs` (the directories of `package`).

    mypyc's support library for a single listed module (`<module>__mypyc.*.so`) is not a module of
    rsp's own and is left out; so is anything whose file name is not a module name.
    """
    names: set[str] = set()
    for directory in package_dirs:
        base = Path(directory)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d.isidentifier() and d != "__pycache__"]
            parts = Path(dirpath).relative_to(base).parts
            for filename in filenames:
                suffix = next((s for s in _EXTENSION_SUFFIXES if filename.endswith(s)), None)
                if suffix is None:
                    continue
                stem = filename[: -len(suffix)]
                if not stem.isidentifier() or stem.endswith("__mypyc"):
                    continue
                names.add(".".join((package, *parts) if stem == "__init__" else (package, *parts, stem)))
    return sorted(names)


def compiled_modules() -> list[str]:
    """Names of the rsp modules that run compiled: imported ones whose `__file__` is an extension module,
    plus every extension file in the package that imports as such (one that fails to import is left out:
    it is not what runs)."""
    names = {
        name
        for name, module in list(sys.modules.items())
        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and is_extension_file(getattr(module, "__file__", None))
    }
    for name in extension_module_names(PACKAGE, rsp.__path__):
        if name in names:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if is_extension_file(module.__file__):
            names.add(name)
    return sorted(names)


def build_description() -> str:
    """`compiled with mypyc (N modules)` or `pure Python`, e.g. for `rsp --version`."""
    count = len(compiled_modules())
    if count == 0:
        return "pure Python"
    return f"compiled with mypyc ({count} module{'' if count == 1 else 's'})"


if __name__ == "__main__":
    print(build_description())
