"""ngx.var: nginx's variables computed from an exchange (plain Python, no Lua).

Values are what nginx gives: strings (bytes here), or None (nil) when the variable has no value. The
prefixed families follow nginx: `arg_NAME` (the raw, undecoded query argument), `http_NAME` (a request header,
`_` for `-`, case-insensitive; several lines joined with ", "), `cookie_NAME`, `sent_http_NAME` (a response
header, once there is a response).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final
from urllib.parse import unquote_to_bytes

from rsp.pipeline.messages import Request, header_values
from rsp.pipeline.phases import ExchangeView
from rsp.pipeline.try_times import nginx_times


def _host(ex: ExchangeView) -> bytes:
    """nginx's $host: the Host without its port, lower-cased (RFC 9110 §4.2.3: the host is case-insensitive)."""
    return _host_of(ex.request.authority)


def _uri(ex: ExchangeView) -> bytes:
    """nginx's $uri: the path, percent-decoded (nginx also merges slashes and resolves dot segments; rsp does
    not rewrite the path, so neither does $uri)."""
    path = ex.request.path
    # unquote_to_bytes costs more than the rest of a variable read: most paths have nothing to decode
    return unquote_to_bytes(path) if b"%" in path else path


def _request_time(ex: ExchangeView) -> bytes:
    return f"{max(0.0, ex.now() - ex.started):.3f}".encode("ascii")


def _status(ex: ExchangeView) -> bytes | None:
    if ex.status:
        return str(ex.status).encode("ascii")
    if ex.response is not None:
        return str(ex.response.status).encode("ascii")
    return None


def _upstream_status(ex: ExchangeView) -> bytes | None:
    return str(ex.upstream_status).encode("ascii") if ex.upstream_status else None


def _upstream_time(step: int) -> Callable[[ExchangeView], bytes | None]:
    """$upstream_connect_time (step 0), $upstream_header_time (1), $upstream_response_time (2)."""
    return lambda ex: nginx_times(ex.upstream_timings, step)


def _content_length(ex: ExchangeView) -> bytes | None:
    return ex.request.get(b"content-length")


_SIMPLE: Final[dict[bytes, Callable[[ExchangeView], bytes | None]]] = {
    b"host": _host,
    b"uri": _uri,
    b"document_uri": _uri,
    b"request_uri": lambda ex: ex.request.target,
    b"args": lambda ex: ex.request.query or None,
    b"query_string": lambda ex: ex.request.query or None,
    b"is_args": lambda ex: b"?" if ex.request.query else b"",
    b"remote_addr": lambda ex: ex.client_ip.encode("ascii"),
    b"binary_remote_addr": lambda ex: ex.client_ip.encode("ascii"),
    b"remote_port": lambda ex: str(ex.client_port).encode("ascii"),
    b"server_port": lambda ex: str(ex.server_port).encode("ascii"),
    b"scheme": lambda ex: ex.request.scheme,
    b"https": lambda ex: b"on" if ex.request.scheme == b"https" else b"",
    b"request_method": lambda ex: ex.request.method,
    b"server_protocol": lambda ex: b"HTTP/" + (b"2.0" if ex.request.version == b"2" else ex.request.version),
    b"status": _status,
    b"upstream_addr": lambda ex: ex.upstream_addr.encode("ascii") or None,
    b"upstream_status": _upstream_status,
    b"request_time": _request_time,
    b"upstream_connect_time": _upstream_time(0),
    b"upstream_header_time": _upstream_time(1),
    b"upstream_response_time": _upstream_time(2),
    b"content_length": _content_length,
    b"content_type": lambda ex: ex.request.get(b"content-type"),
    b"http_host": lambda ex: ex.request.authority,
    b"rsp_pool": lambda ex: ex.pool.encode("utf-8"),
}


# The variables rsp.lua.prelude's ngx.var takes from one bridge call per step (`snapshot`), in the order of
# its SNAPSHOT table: the ones handlers read most, cheap to compute, fixed while the request is unchanged.
# The snapshot's last value is the request's fields (`fields_blob`), from which the prelude computes `http_*`,
# `cookie_*` and `arg_*` as `variable` does here, and ngx.req.get_headers.
SNAPSHOT: Final = (b"uri", b"host", b"args", b"request_uri", b"request_method", b"scheme", b"remote_addr",
                   b"http_host")


def fields_blob(ex: ExchangeView) -> bytes:
    """The request's field lines as b"name\0value\0name\0value" (names lower-case; a Host line made from the
    authority first when there is none): one string crosses into Lua cheaper than a table of them. A field
    value never holds NUL (RFC 9110 §5.5), so NUL separates."""
    return _fields(ex.request)


# Field names lower-cased, remembered (a dictionary lookup costs less than bytes.lower's method call; requests
# carry a few dozen names). Bounded: a client chooses the names.
MAX_LOWERED: Final = 1024
_LOWERED: Final[dict[bytes, bytes]] = {}


def _fields(request: Request) -> bytes:
    parts: list[bytes] = []
    has_host = False
    for name, value in request.headers:
        lowered = _LOWERED.get(name)
        if lowered is None:
            lowered = name.lower()
            if len(_LOWERED) < MAX_LOWERED:
                _LOWERED[name] = lowered
        if lowered == b"host":
            has_host = True
        parts.append(lowered)
        parts.append(value)
    if not has_host and request.authority:
        parts[:0] = [b"host", request.authority]
    return b"\0".join(parts)


# The snapshot's values by bit, for `snapshot`'s `wanted` (in SNAPSHOT's order, FIELDS last).
URI: Final = 1
HOST: Final = 2
ARGS: Final = 4
REQUEST_URI: Final = 8
METHOD: Final = 16
SCHEME: Final = 32
REMOTE_ADDR: Final = 64
HTTP_HOST: Final = 128
FIELDS: Final = 256
ALL: Final = 511
# Which value a variable the prelude takes from the snapshot reads (the prefixed families: their family's).
READS: Final[dict[str, int]] = {
    "uri": URI, "document_uri": URI, "host": HOST, "args": ARGS, "query_string": ARGS, "request_uri": REQUEST_URI,
    "request_method": METHOD, "scheme": SCHEME, "remote_addr": REMOTE_ADDR, "http_host": HTTP_HOST,
}
# `ngx.var.NAME` in a handler's text; any other use of ngx.var (ngx.var[name], `local var = ngx.var`) may
# read anything
_VAR_READ: Final = re.compile(r"ngx\.var(?:\.([A-Za-z_][A-Za-z0-9_]*))?")


def wanted_by(source: str) -> int:
    """The snapshot values a handler's text reads (bits of `snapshot`'s `wanted`): the others are left out of
    its call's snapshot (False: the prelude asks for the whole snapshot if a module or a computed name reads
    one after all). ALL when the text reads ngx.var in a way that does not name the variable."""
    wanted = FIELDS if "get_headers" in source else 0
    for found in _VAR_READ.finditer(source):
        name = found.group(1)
        if name is None:
            return ALL
        bit = READS.get(name)
        if bit is not None:
            wanted |= bit
        elif name.startswith(("http_", "cookie_")):
            wanted |= FIELDS
        elif name.startswith("arg_"):
            wanted |= ARGS
    return wanted


def snapshot(ex: ExchangeView, wanted: int = ALL) -> tuple[bytes | bool | None, ...]:
    """The values of SNAPSHOT's variables for `ex`, in its order, then `fields_blob(ex)`: the request read
    once (each read of the view's attributes is a generic attribute lookup), the values computed inline. A
    value whose bit is not in `wanted` is False (not computed: each value costs its conversion into Lua)."""
    request = ex.request
    target = request.target
    if wanted == ALL:
        path, _, query = target.partition(b"?")
        # (37 is "%": a byte's `in` is a memchr, a bytes' goes through the buffer protocol)
        return (unquote_to_bytes(path) if 37 in path else path, _host_of(request.authority), query or None,
                target, request.method, request.scheme, ex.client_ip.encode("ascii"), request.authority,
                _fields(request))
    uri: bytes | bool = False
    args: bytes | bool | None = False
    if wanted & (URI | ARGS):
        path, _, query = target.partition(b"?")
        if wanted & URI:
            uri = unquote_to_bytes(path) if 37 in path else path
        if wanted & ARGS:
            args = query or None
    return (uri, _host_of(request.authority) if wanted & HOST else False, args,
            target if wanted & REQUEST_URI else False, request.method if wanted & METHOD else False,
            request.scheme if wanted & SCHEME else False,
            ex.client_ip.encode("ascii") if wanted & REMOTE_ADDR else False,
            request.authority if wanted & HTTP_HOST else False, _fields(request) if wanted & FIELDS else False)


# $host by authority, remembered as _LOWERED is (a listener sees a few authorities; bounded: a client chooses)
MAX_HOSTS: Final = 1024
_HOSTS: Final[dict[bytes, bytes]] = {}


def _host_of(authority: bytes) -> bytes:
    """nginx's $host from an authority (see _host)."""
    host = _HOSTS.get(authority)
    if host is not None:
        return host
    if authority[:1] == b"[":
        host = authority[:authority.find(b"]") + 1].lower()
    else:
        colon = authority.rfind(b":")
        host = (authority if colon < 0 else authority[:colon]).lower()
    if len(_HOSTS) < MAX_HOSTS:
        _HOSTS[authority] = host
    return host


def _cookie(ex: ExchangeView, name: bytes) -> bytes | None:
    for line in header_values(ex.request.headers, b"cookie"):
        for pair in line.split(b";"):
            key, eq, value = pair.strip().partition(b"=")
            if eq and key == name:
                return value
    return None


def _arg(ex: ExchangeView, name: bytes) -> bytes | None:
    lowered = name.lower()
    for part in ex.request.query.split(b"&"):
        key, _, value = part.partition(b"=")
        if key.lower() == lowered:
            return value
    return None


def variable(ex: ExchangeView, name: bytes) -> bytes | None:
    """The value of nginx variable `name` for `ex` (None: no value)."""
    simple = _SIMPLE.get(name)
    if simple is not None:
        return simple(ex)
    if name.startswith(b"http_"):
        values = header_values(ex.request.headers, name[5:].replace(b"_", b"-").lower())
        return b", ".join(values) if values else None
    if name.startswith(b"arg_"):
        return _arg(ex, name[4:])
    if name.startswith(b"cookie_"):
        return _cookie(ex, name[7:])
    if name.startswith(b"sent_http_") and ex.response is not None:
        values = header_values(ex.response.headers, name[10:].replace(b"_", b"-").lower())
        return b", ".join(values) if values else None
    return None
