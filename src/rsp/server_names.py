"""What a server-name pattern matches: one rule for HTTP routes (`routes[].host`, rsp.routes.router) and for
TLS names (`sni_routes[].name` and certificate names, rsp.tls.names).

A pattern is an exact name (`a.example`) or a leading wildcard (`*.b.example`). The wildcard stands for
exactly ONE label and never the apex: `*.b.example` matches `x.b.example`, not `b.example` nor
`y.x.b.example`. That is the certificate rule (RFC 6125 §6.4.3, RFC 9525 §6.3), so a route and the
certificate served for the same name cover the same hosts; nginx's `server_name *.example.com` (any depth)
differs, and docs/config.md says so. Names compare case-insensitively (RFC 9110 §4.2.3, RFC 6066 §3) and
without a trailing dot (the root label).

A leaf anyone may use: it imports nothing of rsp.
"""

from __future__ import annotations

from typing import Final

WILDCARD_PREFIX: Final = "*."


def normalise_name(name: str) -> str:
    """`A.Example.` -> `a.example`."""
    return name.lower().rstrip(".")


def wildcard_parent(pattern: str) -> str | None:
    """The parent a wildcard pattern covers one label under (`*.b.example` -> `b.example`); None for an
    exact name. `pattern` is normalised."""
    return pattern[len(WILDCARD_PREFIX):] if pattern.startswith(WILDCARD_PREFIX) else None


def parent_of(name: str) -> str | None:
    """The name without its first label (`x.b.example` -> `b.example`), the key a one-label wildcard is
    looked up by; None for a single label or an empty first label. `name` is normalised."""
    first, dot, parent = name.partition(".")
    return parent if dot and first and parent else None


def name_matches(pattern: str, name: str) -> bool:
    """Whether normalised `name` matches normalised `pattern` (exact, or one label under a wildcard)."""
    parent = wildcard_parent(pattern)
    if parent is None:
        return name == pattern
    return parent_of(name) == parent
