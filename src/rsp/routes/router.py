"""Pick a pool for a request from its Host, path and method (pure; no I/O).

Rules are tried in order, first match wins (HAProxy `use_backend` order; nginx's server_name/location
precedence is subtler, but an ordered list is what a person can read and predict). A rule's host is exact
(`example.com`) or a leading wildcard (`*.example.com`: exactly one label, never the apex; the certificate
rule, shared with SNI routing: rsp.server_names). Host comparison ignores case and a port suffix (RFC 9110
§4.2.3: host is case-insensitive).
"""

from __future__ import annotations

from collections.abc import Sequence

from rsp.config.model import Route
from rsp.server_names import name_matches


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
    __slots__ = ("default", "routes")

    def __init__(self, routes: Sequence[Route], default: str) -> None:
        self.routes = tuple(routes)
        self.default = default

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
        path_text = path.decode("latin-1")
        method_text = method.decode("latin-1")
        for route in self.routes:
            if (host_matches(route.host, name)
                    and path_text.startswith(route.path_prefix)
                    and (not route.methods or method_text in route.methods)):
                return route.pool
        return None
