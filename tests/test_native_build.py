"""The mypyc build as the tests see it: rsp.native's report, and the staleness check of tests/conftest.py."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

from rsp.native import build_description, compiled_modules, extension_module_names, is_extension_file
from support.native_build import REPO_ROOT, listed_sources, module_name, session_problem, stale_modules

EXT = importlib.machinery.EXTENSION_SUFFIXES[0]  # ".cpython-311-x86_64-linux-gnu.so" here


def _listed_compiled() -> set[str]:
    names = {module_name(source) for source in listed_sources()}
    return {name for name in names if is_extension_file(importlib.import_module(name).__file__)}


def test_build_description_matches_the_modules_that_run() -> None:
    listed = {module_name(source) for source in listed_sources()}
    compiled = set(compiled_modules())
    if os.environ.get("RSP_EXPECT_COMPILED") == "1":
        assert listed <= compiled
        assert all((importlib.import_module(name).__file__ or "").endswith(EXT) for name in listed)
    if os.environ.get("RSP_EXPECT_PURE") == "1":
        assert compiled == set()
    # Whatever the mode: rsp.native finds exactly the listed modules that import from an extension file.
    assert compiled == _listed_compiled()
    n = len(compiled)
    expected = "pure Python" if n == 0 else f"compiled with mypyc ({n} module{'s' * (n > 1)})"
    assert build_description() == expected


def test_child_processes_run_the_same_build() -> None:
    """Tests start rsp as `python -m ...` with the test's environment: it must run the same build (in the
    pure pass of scripts/test, PYTHONPATH puts a copy of the sources first, and children inherit it)."""
    out = subprocess.run([sys.executable, "-m", "rsp.native"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ), check=True).stdout
    assert out.strip() == build_description()


def _tree(root: Path, listing: str, sources: list[str]) -> None:
    (root / "native_modules.txt").write_text(listing)
    for source in sources:
        (root / source).parent.mkdir(parents=True, exist_ok=True)
        (root / source).write_text("X = 1\n")


def _set_mtime(path: Path, mtime: float) -> None:
    os.utime(path, (mtime, mtime))


def test_listing_drops_comments_and_blank_lines(tmp_path: Path) -> None:
    _tree(tmp_path, "# what this file is\n\nsrc/rsp/a/x.py  # hot\n   \nsrc/rsp/a/__init__.py\n", [])
    assert listed_sources(tmp_path) == ["src/rsp/a/x.py", "src/rsp/a/__init__.py"]
    assert [module_name(s) for s in listed_sources(tmp_path)] == ["rsp.a.x", "rsp.a"]


def test_a_so_older_than_its_py_is_stale(tmp_path: Path) -> None:
    sources = ["src/rsp/a/x.py", "src/rsp/a/y.py", "src/rsp/b/z.py"]
    _tree(tmp_path, "\n".join(sources) + "\n", sources)
    t = 1_700_000_000.0
    for source in sources:
        _set_mtime(tmp_path / source, t)
    x_so = tmp_path / f"src/rsp/a/x{EXT}"
    y_so = tmp_path / f"src/rsp/a/y{EXT}"
    x_so.write_bytes(b"")
    y_so.write_bytes(b"")
    _set_mtime(x_so, t + 10)  # built after the edit: fresh
    _set_mtime(y_so, t - 10)  # built before the edit: stale
    # z has no .so at all: it runs as Python, which is not stale.
    assert stale_modules(tmp_path) == ["rsp.a.y"]
    problem = session_problem(tmp_path, {})
    assert problem == "stale compiled module rsp.a.y: run scripts/build-native"

    _set_mtime(tmp_path / "src/rsp/a/x.py", t + 20)  # edit x after its build
    assert stale_modules(tmp_path) == ["rsp.a.x", "rsp.a.y"]
    assert "modules rsp.a.x, rsp.a.y:" in (session_problem(tmp_path, {}) or "")

    _set_mtime(x_so, t + 30)
    _set_mtime(y_so, t + 30)
    assert stale_modules(tmp_path) == []
    assert session_problem(tmp_path, {}) is None


def test_an_unlisted_so_is_not_checked(tmp_path: Path) -> None:
    _tree(tmp_path, "# nothing compiled\n", ["src/rsp/a/x.py"])
    so = tmp_path / f"src/rsp/a/x{EXT}"
    so.write_bytes(b"")
    _set_mtime(so, 1_000_000_000.0)
    assert stale_modules(tmp_path) == []


def test_extension_files_map_to_module_names(tmp_path: Path) -> None:
    for name in [f"x{EXT}", "y.py", f"pkg/__init__{EXT}", f"pkg/z{EXT}", f"pkg/z__mypyc{EXT}",
                 f"not.a.module{EXT}", f"__pycache__/w{EXT}", "pkg/data.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert extension_module_names("rsp", [str(tmp_path)]) == ["rsp.pkg", "rsp.pkg.z", "rsp.x"]


def test_the_expectation_that_this_run_does_not_meet_is_refused() -> None:
    if compiled_modules():
        problem = session_problem(REPO_ROOT, {"RSP_EXPECT_PURE": "1"}) or ""
        assert problem.startswith("RSP_EXPECT_PURE=1 but these rsp modules are compiled: ")
    else:
        problem = session_problem(REPO_ROOT, {"RSP_EXPECT_COMPILED": "1"}) or ""
        assert problem.startswith("RSP_EXPECT_COMPILED=1 but these listed modules run as Python: ")
        assert module_name(listed_sources()[0]) in problem
