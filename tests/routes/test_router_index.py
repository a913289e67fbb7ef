"""The router's host index gives the same answer as trying every rule in order (the semantics docs/config.md
states: first match wins; `*.parent` covers exactly one label), for random rule sets and requests."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rsp.config.model import Route
from rsp.routes.router import Router, host_matches, host_only

LABELS = ("a", "b", "c", "xn--d")
PATHS = ("", "/", "/a", "/a/b", "/b")
METHODS = ("GET", "POST", "PUT")


def linear_match(routes: list[Route], host: bytes, path: bytes, method: bytes) -> str | None:
    """The reference: every rule in the config's order, as the router did before its index."""
    name = host_only(host)
    path_text = path.decode("latin-1")
    method_text = method.decode("latin-1")
    for route in routes:
        if (host_matches(route.host, name) and path_text.startswith(route.path_prefix)
                and (not route.methods or method_text in route.methods)):
            return route.pool
    return None


names = st.lists(st.sampled_from(LABELS), min_size=1, max_size=3).map(".".join)
rule_hosts = st.one_of(st.just(""), names, names.map(lambda n: "*." + n))
rules = st.builds(
    lambda i, host, path, methods: Route(pool=f"p{i}", host=host, path_prefix=path, methods=frozenset(methods)),
    st.integers(0, 5), rule_hosts, st.sampled_from(PATHS), st.sets(st.sampled_from(METHODS), max_size=2),
)
# What clients send: case, a port, a trailing dot, a label the rules never use, an IP literal, nothing.
request_hosts = st.one_of(
    names, names.map(str.upper), names.map(lambda n: n + ":8080"), names.map(lambda n: n + "."),
    names.map(lambda n: "zz." + n), st.sampled_from(("", "[::1]:80", "127.0.0.1", ".a", "a..b", "*.a")),
)
requests = st.tuples(request_hosts.map(str.encode), st.sampled_from((*PATHS, "/a/b/c", "/c")),
                     st.sampled_from(METHODS))


@settings(max_examples=400, deadline=None)
@given(st.lists(rules, max_size=12), st.lists(requests, min_size=1, max_size=8))
def test_the_index_answers_as_the_ordered_scan(routes: list[Route], reqs: list[tuple[bytes, str, str]]) -> None:
    router = Router(routes, "default")
    for host, path, method in reqs:
        expected = linear_match(routes, host, path.encode(), method.encode())
        assert router.match(host, path.encode(), method.encode()) == expected
        assert router.pool_for(host, path.encode(), method.encode()) == (expected or "default")


# Table-driven: the orderings the index must keep across its three groups.
TABLE = [
    # (rules as (pool, host, path), request host, path, expected pool)
    ([("any", "", "/"), ("exact", "a.b", "/")], "a.b", "/x", "any"),
    ([("exact", "a.b", "/x"), ("wild", "*.b", "/"), ("any", "", "/")], "a.b", "/y", "wild"),
    ([("wild", "*.b", "/y"), ("exact", "a.b", "/"), ("any", "", "/")], "a.b", "/y", "wild"),
    ([("wild", "*.b", "/"), ("exact", "a.b", "/")], "c.a.b", "/", None),  # one label only
    ([("wild", "*.b", "/")], "b", "/", None),  # never the apex
    ([("exact", "a.b", "/")], "A.B:443", "/", "exact"),
    ([("exact", "a.b", "/")], "a.b.", "/", None),  # host_only keeps a trailing dot: as before the index
    ([("wild", "*.a.b", "/z"), ("any", "", "/z"), ("wild2", "*.a.b", "/")], "x.a.b", "/q", "wild2"),
]


def test_the_table() -> None:
    for spec, host, path, expected in TABLE:
        routes = [Route(pool=pool, host=rule_host, path_prefix=prefix) for pool, rule_host, prefix in spec]
        assert Router(routes, "d").match(host.encode(), path.encode(), b"GET") == expected, (spec, host, path)
        assert linear_match(routes, host.encode(), path.encode(), b"GET") == expected


def test_a_thousand_hosts_index_one_rule_each() -> None:
    routes = [Route(pool=f"p{i}", host=f"h{i}.example") for i in range(1000)]
    router = Router(routes, "d")
    assert router.match(b"h999.example", b"/", b"GET") == "p999"
    assert router.by_name["h999.example"] == (999,) and router.any_host == () and not router.by_parent
