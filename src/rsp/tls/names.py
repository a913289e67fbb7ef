"""Server names to values (certificates, pools): exact first, then `*.parent` for one more label.

One rule for both users of SNI, the certificate choice (rsp.tls.server_context) and SNI routing
(rsp.proxy.sni_proxy): RFC 6066 §3's host name, lower-cased and without a trailing dot, matched like an
RFC 6125 §6.4.3 wildcard (the `*` stands for exactly one label, never the apex), the rule of the HTTP routes
too (rsp.server_names, which both follow).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from rsp.server_names import normalise_name, parent_of, wildcard_parent

T = TypeVar("T")


class NameTable(Generic[T]):
    """`exact["a.example"]` and `wildcard["b.example"]` (for `*.b.example`); the first entry of a name wins."""

    def __init__(self) -> None:
        self.exact: dict[str, T] = {}
        self.wildcard: dict[str, T] = {}

    def add(self, name: str, value: T) -> None:
        name = normalise_name(name)
        parent = wildcard_parent(name)
        if parent is not None:
            self.wildcard.setdefault(parent, value)
        else:
            self.exact.setdefault(name, value)

    def lookup(self, server_name: str) -> T | None:
        name = normalise_name(server_name)
        found = self.exact.get(name)
        if found is not None:
            return found
        parent = parent_of(name)
        return self.wildcard.get(parent) if parent is not None else None
