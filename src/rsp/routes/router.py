"""Pick a pool for a request from its Host, path and method (pure; no I/O).

Rules are tried in order, first match wins (HAProxy `use_backend` order; nginx's server_name/location
precedence is subtler, but an ordered list is what a person can read and predict). A rule's host is exact
(`example.com`) or a leading wildcard (`*.example.com`: exactly one label, never the apex; the certificate
rule, shared with SNI routing: rsp.server_names). Host comparison ignores case and a port suffix (RFC 9110
§4.2.3: host is case-insensitive).

The rules are indexed by host so that a match costs the same with 1,000 host rules as with one
(docs/performance.md, "Scale"): a request's candidates are the rules for its exact name (one dict lookup),
the wildcard rules for its parent (the name without its first label: a wildcard covers exactly one label,
so that is the only parent that can match) and the host-less rules, taken in the config's order, so "first
match wins" holds exactly as in a scan of the whole list.
"""

from __future__ import annotations

from collections.abc import Sequence

from rsp.config.model import Route
from rsp.server_names import name_matches, parent_of, wildcard_parent


def host_only(host: bytes) -> str:
    """`Example.COM:8080` -> `example.com`; `[::1]:80` -> `[::1]`."""
    text = host.decode("latin-1").strip().lower()
    if text.startswith("["):
        end = text.find("]")
        return text[: end + 1] if end >= 0 else text
    return text.rsplit(":", 1)[0] if ":" in text else text


def host_matches(rule_host: str, host: str) -> bool:
    if not rule_host:
        return True
    return name_matches(rule_host, host)


class Router:
    __slots__ = ("any_host", "by_name", "by_parent", "default", "routes")

    def __init__(self, routes: Sequence[Route], default: str) -> None:
        self.routes = tuple(routes)
        self.default = default
        exact: dict[str, list[int]] = {}
        wild: dict[str, list[int]] = {}
        any_host: list[int] = []
        for i, route in enumerate(self.routes):
            if not route.host:
                any_host.append(i)
                continue
            parent = wildcard_parent(route.host)
            if parent is None:
                exact.setdefault(route.host, []).append(i)
            else:
                wild.setdefault(parent, []).append(i)
        # The candidates of a request, as indexes into `routes` in the config's order, merged once here so
        # that a match is one dict lookup: for a name some rule names exactly, its exact rules, the wildcard
        # rules of its parent and the host-less rules; for another name under a wildcard's parent, that
        # parent's rules and the host-less ones; for any other name, the host-less rules. (Memory: the
        # host-less rules are repeated in every entry, hosts x host-less rules indexes in all.)
        self.any_host = tuple(any_host)
        self.by_parent = {parent: tuple(sorted(found + any_host)) for parent, found in wild.items()}
        self.by_name: dict[str, tuple[int, ...]] = {}
        for name, found in exact.items():
            name_parent = parent_of(name)
            under = wild.get(name_parent, []) if name_parent is not None else []
            self.by_name[name] = tuple(sorted(found + under + any_host))

    def pool_for(self, host: bytes, path: bytes, method: bytes) -> str:
        if not self.routes:
            return self.default
        found = self.match(host, path, method)
        return self.default if found is None else found

    def match(self, host: bytes, path: bytes, method: bytes) -> str | None:
        """The pool of the first rule that matches, None when none does (then a route store may decide)."""
        if not self.routes:
            return None
        name = host_only(host)
        candidates = self.by_name.get(name)
        if candidates is None:
            if self.by_parent:
                parent = parent_of(name)
                if parent is not None:
                    candidates = self.by_parent.get(parent)
            if candidates is None:
                candidates = self.any_host
                if not candidates:
                    return None
        path_text = path.decode("latin-1")
        method_text = method.decode("latin-1")
        routes = self.routes
        for i in candidates:
            route = routes[i]
            if path_text.startswith(route.path_prefix) and (not route.methods or method_text in route.methods):
                return route.pool
        return None
