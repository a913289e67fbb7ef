"""The Redis schema of routes: the author's earlier router's, kept so that existing tables keep working.

    SADD hostnames:<host>:backends  10.0.0.1:8080 10.0.0.2:8080
    SADD hostnames:httpDefault:backends  10.0.0.9:8080        (hosts with no key of their own)

`rsp routes` publishes the changed host name on the invalidation channel after each write ("*" when the
default route changed, which concerns every host that falls back to it).
"""

from __future__ import annotations

import ipaddress
from typing import Final

from rsp.config.model import Backend

DEFAULT_HOST: Final = "httpDefault"
# The default route of SNI routing (rsp.proxy.sni_proxy through rsp.routestore.client.lookup_tls).
TLS_DEFAULT_HOST: Final = "httpsDefault"
KEY_SUFFIX: Final = ":backends"
INVALIDATE_ALL: Final = "*"
# A member longer than this is garbage, not an address (a DNS name is at most 253 bytes, plus a port).
MAX_MEMBER_BYTES: Final = 300


def backends_key(prefix: str, host: str) -> str:
    return f"{prefix}{host}{KEY_SUFFIX}"


def host_of_key(prefix: str, key: str) -> str | None:
    """`hostnames:example.com:backends` -> `example.com` (None for a key outside the schema)."""
    if not key.startswith(prefix) or not key.endswith(KEY_SUFFIX):
        return None
    host = key[len(prefix): -len(KEY_SUFFIX)]
    return host or None


def normalise_host(host: str) -> str:
    """Host names compare case-insensitively (RFC 9110 §4.2.3); the store's keys are lower case."""
    return host.strip().lower()


def parse_member(member: bytes | str) -> Backend | None:
    """`10.0.0.1:8080`, `[::1]:8080` or `app.internal:8080` -> Backend; None for anything else."""
    if isinstance(member, bytes):
        if len(member) > MAX_MEMBER_BYTES:
            return None
        try:
            text = member.decode("ascii")
        except UnicodeDecodeError:
            return None
    else:
        text = member
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            return None
        port_text = rest[1:]
        try:
            if ipaddress.ip_address(host).version != 6:
                return None
        except ValueError:
            return None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or ":" in host:
            return None
        if not is_ip(host) and not _is_hostname(host):
            return None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        return None
    return Backend(host, int(port_text))


def format_member(backend: Backend) -> str:
    return backend.address


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_hostname(text: str) -> bool:
    # RFC 1123 §2.1 labels: letters, digits, hyphens (underscores tolerated, as resolvers do), 1-63 bytes.
    labels = text.rstrip(".").split(".")
    return len(text) <= 253 and all(
        0 < len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum() and label.isascii()
        for label in labels)
