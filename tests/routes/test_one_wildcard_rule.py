"""`*.parent` means one thing everywhere (issue 20, item 7): exactly one label, never the apex (RFC 6125
§6.4.3), in HTTP routes (rsp.routes.router) and in TLS names (rsp.tls.names: sni_routes and certificates).
One table, run through the shared rule and through both matchers."""

from __future__ import annotations

import pytest

from rsp.config.model import Route
from rsp.routes.router import Router
from rsp.server_names import name_matches
from rsp.tls.names import NameTable

# (pattern, name, matches)
CASES = [
    ("*.b.example", "x.b.example", True),
    ("*.b.example", "X.B.Example", True),  # case does not matter
    ("*.b.example", "b.example", False),  # never the apex
    ("*.b.example", "y.x.b.example", False),  # one label only
    ("*.b.example", "xb.example", False),
    ("*.b.example", "x.b.example.org", False),
    ("*.b.example", ".b.example", False),  # an empty label is no label
    ("a.example", "a.example", True),
    ("a.example", "A.EXAMPLE", True),
    ("a.example", "x.a.example", False),
    ("a.example", "example", False),
]


@pytest.mark.parametrize(("pattern", "name", "matches"), CASES)
def test_the_shared_rule(pattern: str, name: str, matches: bool) -> None:
    assert name_matches(pattern, name.lower()) is matches


@pytest.mark.parametrize(("pattern", "name", "matches"), CASES)
def test_http_routes_follow_it(pattern: str, name: str, matches: bool) -> None:
    router = Router([Route(pool="matched", host=pattern)], default="fallback")
    assert router.pool_for(name.encode(), b"/", b"GET") == ("matched" if matches else "fallback")


@pytest.mark.parametrize(("pattern", "name", "matches"), CASES)
def test_tls_names_follow_it(pattern: str, name: str, matches: bool) -> None:
    table: NameTable[str] = NameTable()
    table.add(pattern, "matched")
    assert table.lookup(name) == ("matched" if matches else None)
