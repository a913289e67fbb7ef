"""The session's imports point one way (docs/architecture.md, "The HTTP session, split by job"): each module
of HTTP mode's session imports only modules after it in ORDER, at run time or for type checking alike."""

from __future__ import annotations

from pathlib import Path

import rsp
from support.imports import sibling_imports

# Top to bottom: who creates whom, then the interfaces the others are named through.
ORDER = ["http_proxy", "background", "h2_front", "h2_session", "h2_stream", "client", "exchange", "filter_run",
         "filter_routing", "held_body", "session_state", "http_upstream", "session_api", "session_io"]
PROXY = Path(rsp.__file__).parent / "proxy"


def session_imports(name: str) -> set[str]:
    """The session modules `name` imports (any `rsp.proxy.X` in ORDER), wherever the import statement is."""
    return sibling_imports(PROXY, "rsp.proxy.", name, ORDER)


def test_each_session_module_imports_only_modules_below_it() -> None:
    for position, name in enumerate(ORDER):
        upward = {imported for imported in session_imports(name) if ORDER.index(imported) <= position}
        assert not upward, f"rsp.proxy.{name} imports {sorted(upward)}, which are not below it"


def test_the_check_sees_imports_under_type_checking() -> None:
    # exchange imports session_api's bases at run time; the check must find imports of any form.
    assert {"session_api", "session_state", "filter_run"} <= session_imports("exchange")
