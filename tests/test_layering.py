"""docs/architecture.md's import rules, checked on the source: a package never imports what its layer may not
(at run time or for type checking alike). One row per rule the document states; the proxy session's own
order is tests/proxy/test_layering.py."""

from __future__ import annotations

from pathlib import Path

import pytest

import rsp
from support.imports import imported_modules

SRC = Path(rsp.__file__).parent
# What every layer may import: the typed errors are a leaf.
ALLOWED = ("rsp.errors",)
# (package or module under rsp, imports of rsp it may not make, why)
RULES = [
    ("sandbox", ("rsp.proxy", "rsp.master", "rsp.server", "rsp.admin"),
     "an app announces readiness; the master joins it to its pools (rsp.master.app_pools)"),
    ("transport", ("rsp.proxy", "rsp.http1", "rsp.balance", "rsp.config"),
     "the transport calls the proxy through interfaces it defines"),
    ("pipeline", ("rsp.",), "pipeline imports nothing of rsp but errors"),
    ("health", ("rsp.balance", "rsp.proxy"), "the checker sets record.up and calls a callback"),
    ("balance", ("rsp.health", "rsp.proxy"), "siblings do not import each other"),
    ("metrics", ("rsp.server",), "metrics are fed, they do not read the server"),
    ("supervise", ("rsp.master", "rsp.sandbox", "rsp.server", "rsp.proxy"), "a leaf"),
]


def sources(package: str) -> list[Path]:
    base = SRC / package
    return sorted(base.rglob("*.py")) if base.is_dir() else [SRC / f"{package}.py"]


@pytest.mark.parametrize(("package", "forbidden", "why"), RULES, ids=[r[0] for r in RULES])
def test_a_package_never_imports_what_its_layer_may_not(package: str, forbidden: tuple[str, ...],
                                                        why: str) -> None:
    files = sources(package)
    assert files, package
    wrong = {f"{path.relative_to(SRC)}: {module}" for path in files for module in imported_modules(path)
             if module.startswith(forbidden) and not module.startswith((f"rsp.{package}", *ALLOWED))}
    assert not wrong, f"{sorted(wrong)}: {why}"


def test_the_check_sees_an_import_made_for_type_checking_only(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rsp.proxy.pools import X\n")
    assert "rsp.proxy.pools" in imported_modules(module)
