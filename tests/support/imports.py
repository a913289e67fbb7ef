"""What a source file imports, read from its syntax tree: the layering tests' one reader (tests/test_layering.py,
tests/proxy/test_layering.py, tests/lua/test_lua_layering.py). Every import statement counts, wherever it
is: at run time, in a function, or under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, and for `from M import N` also `M.N` (N may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def sibling_imports(package: Path, prefix: str, name: str, siblings: list[str]) -> set[str]:
    """The modules of `siblings` that `package`/`name`.py imports, by short name (`prefix` is the package's
    dotted name with its trailing dot, e.g. "rsp.proxy.")."""
    return {m.removeprefix(prefix) for m in imported_modules(package / f"{name}.py")
            if m.startswith(prefix) and m.removeprefix(prefix) in siblings}
