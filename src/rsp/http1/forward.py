"""Heads and body framing as rsp forwards them (RFC 9110 §7.6, RFC 9112 §6, §7, §9).

Requests go to the backend as HTTP/1.1 with:
- every hop-by-hop field removed: Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
  Transfer-Encoding, Upgrade, and every field the Connection field names (RFC 9110 §7.6.1);
  `Transfer-Encoding: chunked` is written again when the body is chunked (rsp re-chunks it),
  `Upgrade` and `Connection: upgrade` when the request is forwarded as a protocol switch;
- X-Forwarded-For / -Proto / -Host: from a peer that is not a trusted proxy, whatever the client sent
  is dropped and replaced by what rsp saw; from a trusted proxy, X-Forwarded-For is extended and the
  other two are kept when present. RFC 7239 `Forwarded` on request, same trust rule;
- `Via: <received-protocol> rsp` (RFC 9110 §7.6.3), appended after any Via the client sent;
- Host as received, except for an absolute-form target: that is rewritten to origin-form and Host is
  set from its authority, as RFC 9112 §3.2.2 requires of a proxy.

Responses go to the client with hop-by-hop fields removed the same way, `Via` optionally, the framing
rsp will write (`response_framing()` decides it) and a `Connection` field when the keep-alive decision
needs saying. Body bytes are never re-parsed: the parsers hand out `Data`, these helpers frame it.
"""

from __future__ import annotations

from typing import Final

from rsp.http1.events import Headers, RequestHead, ResponseHead

# Hop-by-hop fields (RFC 9110 §7.6.1), plus Proxy-Connection (never standard, still sent by old clients;
# RFC 9112 Appendix C.2.2 has recipients treat it as hop-by-hop) and Keep-Alive (RFC 2068 §19.7.1).
HOP_BY_HOP: Final = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    )
)
_XFF: Final = b"x-forwarded-for"
_XFP: Final = b"x-forwarded-proto"
_XFH: Final = b"x-forwarded-host"
_FORWARDED: Final = b"forwarded"
_HOST: Final = b"host"
_UPGRADE: Final = b"upgrade"
_CONTENT_LENGTH: Final = b"content-length"
# Rebuilt by rsp on every request: what the client sent is dropped (or, from a trusted proxy, extended).
_REBUILT: Final = frozenset((_XFF, _XFP, _XFH, _FORWARDED))
VIA_PSEUDONYM: Final = b"rsp"
_VIA_LINES: Final = {version: b"Via: " + version + b" " + VIA_PSEUDONYM + b"\r\n" for version in (b"1.0", b"1.1")}


class RequestContext:
    """Everything `forward_request` reads besides the request head: the output is a function of the head
    and this, so a cache of forwarded heads keys on both (rsp.proxy.reply_cache). A new input of
    forward_request must be a field here (tests/http1/test_forward.py checks the signatures).

    client_ip: the peer address as the socket reports it (no port); b"unknown" is written for "".
    trusted: the peer is a trusted proxy: its X-Forwarded-For / Forwarded are extended and its
        X-Forwarded-Proto / -Host kept; otherwise all four are replaced by what rsp saw.
    forwarded: also write RFC 7239 Forwarded. via: write `Via: <version> rsp`.
    proto: X-Forwarded-Proto and Forwarded proto of the listener (b"http" or b"https").
    tunnel: forward the protocol switch (Upgrade + Connection: upgrade); None: when `head.upgrade`.
    close: ask the backend to close after this request; by default its connection stays reusable.
    fallback_host: Host to send when the request has none (HTTP/1.0); Host is mandatory in the
        HTTP/1.1 request rsp sends (RFC 9112 §3.2), and b"" is a valid empty Host.
    """

    __slots__ = ("client_ip", "close", "fallback_host", "forwarded", "proto", "trusted", "tunnel", "via")

    def __init__(self, client_ip: str, trusted: bool = False, forwarded: bool = False, via: bool = True,
                 proto: bytes = b"http", tunnel: bool | None = None, close: bool = False,
                 fallback_host: bytes = b"") -> None:
        self.client_ip: Final = client_ip
        self.trusted: Final = trusted
        self.forwarded: Final = forwarded
        self.via: Final = via
        self.proto: Final = proto
        self.tunnel: Final = tunnel
        self.close: Final = close
        self.fallback_host: Final = fallback_host

    def same(self, other: RequestContext) -> bool:
        """Every field equal (by value)."""
        return self is other or (
            self.client_ip == other.client_ip and self.trusted == other.trusted
            and self.forwarded == other.forwarded and self.via == other.via and self.proto == other.proto
            and self.tunnel == other.tunnel and self.close == other.close
            and self.fallback_host == other.fallback_host)


def request_head(
    head: RequestHead,
    client_ip: str,
    *,
    trusted: bool = False,
    forwarded: bool = False,
    via: bool = True,
    proto: bytes = b"http",
    tunnel: bool | None = None,
    close: bool = False,
    fallback_host: bytes = b"",
) -> bytes:
    """forward_request() with the context's fields as arguments (see RequestContext)."""
    return forward_request(head, RequestContext(client_ip, trusted, forwarded, via, proto, tunnel, close,
                                                fallback_host))


def forward_request(head: RequestHead, context: RequestContext) -> bytes:
    """The request head to send to the backend (HTTP/1.1), for `head` received in `context`.

    The body goes after it framed as `head.body`: Data bytes as they are for "length", through
    `encode_chunk()` and `last_chunk()` for "chunked".
    """
    client_ip = context.client_ip
    trusted = context.trusted
    forwarded = context.forwarded
    via = context.via
    proto = context.proto
    tunnel = context.tunnel
    close = context.close
    fallback_host = context.fallback_host
    target = head.target
    verbatim = head.forwardable
    if verbatim is not None and target[0] == 47 and head.upgrade is None and not forwarded:
        # The usual request, in one step: origin-form, no protocol switch, field lines the parser vouched
        # for (see RequestHead.forwardable); the general code below writes the same bytes.
        host = head.host
        return b"%b %b HTTP/1.1\r\n%b%b%bX-Forwarded-For: %b\r\nX-Forwarded-Proto: %b\r\n%b%b%b%b\r\n" % (
            head.method,
            target,
            verbatim,
            b"Transfer-Encoding: chunked\r\n" if head.body.kind == "chunked" else b"",
            b"Connection: close\r\n" if close else b"",
            client_ip.encode("ascii") if client_ip else b"unknown",
            proto,
            b"X-Forwarded-Host: " if host else b"",
            host,
            b"\r\n" if host else b"",
            (_VIA_LINES.get(head.version) or b"Via: " + head.version + b" " + VIA_PSEUDONYM + b"\r\n") if via else b"",
        )
    rewrite_host = False
    if target[0] != 47 and target != b"*" and head.method != b"CONNECT":
        # absolute-form -> origin-form; Host from the authority (RFC 9112 §3.2.2).
        rest = target[target.index(b"://") + 3 + len(head.host) :]
        if rest[:1] != b"/":
            rest = b"/" + rest
        target = rest
        rewrite_host = True
    if tunnel is None:
        tunnel = head.upgrade is not None

    parts = [head.method, b" ", target, b" HTTP/1.1\r\n"]
    append = parts.append
    prior_xff: list[bytes] = []
    prior_xfp = prior_xfh = b""
    prior_forwarded: list[bytes] = []
    if verbatim is not None and not rewrite_host:
        # The parser vouched that these lines are what the loop below would write: hop-by-hop lines
        # already out, Host present, no X-Forwarded-* or Forwarded, nothing else named by Connection,
        # every line already `Name: value`.
        append(verbatim)
        saw_host = True
    else:
        drop: frozenset[bytes] = HOP_BY_HOP
        connection = head.connection
        if connection and not HOP_BY_HOP.issuperset(connection):
            drop = HOP_BY_HOP.union(connection)
        saw_host = False
        for name, value in head.headers:
            lowered = name.lower()
            if lowered in drop:
                continue
            if lowered in _REBUILT:
                if trusted:
                    if lowered == _XFF:
                        prior_xff.append(value)
                    elif lowered == _FORWARDED:
                        prior_forwarded.append(value)
                    elif lowered == _XFP:
                        prior_xfp = value
                    else:
                        prior_xfh = value
                continue
            if lowered == _HOST:
                saw_host = True
                if rewrite_host:
                    value = head.host
            elif lowered == _CONTENT_LENGTH:
                # Canonical decimal: "010" is ten to RFC 9110 but eight to a strtoll(, , 0) backend
                # (HTTP Garden server bug 32).
                value = _decimal(value)
            append(name)
            append(b": ")
            append(value)
            append(b"\r\n")
    if not saw_host:
        append(b"Host: ")
        append(head.host if rewrite_host else fallback_host)
        append(b"\r\n")
    if head.body.kind == "chunked":
        append(b"Transfer-Encoding: chunked\r\n")
    if tunnel and head.upgrade is not None:
        append(b"Upgrade: ")
        append(head.upgrade)
        append(b"\r\nConnection: upgrade\r\n")
    elif close:
        append(b"Connection: close\r\n")

    proxy_fields(parts, context, head.host, head.version, prior_xff, prior_xfp, prior_xfh, prior_forwarded)
    return b"".join(parts)


def proxy_fields(parts: list[bytes], context: RequestContext, host: bytes, version: bytes, prior_xff: list[bytes],
                 prior_xfp: bytes, prior_xfh: bytes, prior_forwarded: list[bytes]) -> None:
    """Append what rsp adds to every forwarded request head after its fields, and the empty line:
    X-Forwarded-For / -Proto / -Host, Forwarded, Via. `host` is the authority the client asked for, `version`
    the client's HTTP version; the priors are what a trusted peer sent (empty from an untrusted one).
    Shared by forward_request and rsp.http1.serialise (a head a filter changed)."""
    client_ip = context.client_ip
    proto = context.proto
    peer = client_ip.encode("ascii") if client_ip else b"unknown"
    if prior_xff:
        prior_xff.append(peer)
        xff = b", ".join(prior_xff)
    else:
        xff = peer
    forwarded_host = prior_xfh or host
    if forwarded_host:
        parts += (b"X-Forwarded-For: ", xff, b"\r\nX-Forwarded-Proto: ", prior_xfp or proto, b"\r\nX-Forwarded-Host: ",
                  forwarded_host, b"\r\n")
    else:
        parts += (b"X-Forwarded-For: ", xff, b"\r\nX-Forwarded-Proto: ", prior_xfp or proto, b"\r\n")
    if context.forwarded:
        prior_forwarded.append(forwarded_element(peer, host, proto))
    if prior_forwarded:
        parts += (b"Forwarded: ", b", ".join(prior_forwarded), b"\r\n")
    if context.via:
        parts.append(_VIA_LINES.get(version) or b"Via: " + version + b" " + VIA_PSEUDONYM + b"\r\n")
    parts.append(b"\r\n")


def _decimal(value: bytes) -> bytes:
    """A Content-Length value the parser validated (1 to 18 digits), without leading zeros."""
    return value.lstrip(b"0") or b"0"


def forwarded_element(peer: bytes, host: bytes, proto: bytes) -> bytes:
    """One RFC 7239 forwarded-element: for=...;host=...;proto=... (§4, §6: IPv6 in quoted brackets)."""
    node = b'"[' + peer + b']"' if b":" in peer else peer
    element = b"for=" + node
    if host:
        element += b";host=" + host if _is_token(host) else b';host="' + host + b'"'
    return element + b";proto=" + proto


def _is_token(value: bytes) -> bool:
    return all(byte in _TCHARS for byte in value)


_TCHARS: Final = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class ResponseContext:
    """Everything `forward_response` reads besides the response head: the facts of the request it answers
    and rsp's own choices. The output is a function of the head and this, so a cache of forwarded
    responses keys on both (rsp.proxy.reply_cache). A new input of forward_response must be a field here
    (tests/http1/test_forward.py checks the signatures).

    request_version, request_keep_alive: the request's (RequestHead.version, .keep_alive).
    close: rsp closes the client connection after this response (draining, or the request body is not
        complete). via: write `Via: <version> rsp`. upgrade: the connection switches protocols (101).
    """

    __slots__ = ("close", "request_keep_alive", "request_version", "upgrade", "via")

    def __init__(self, request_version: bytes, request_keep_alive: bool, close: bool = False, via: bool = False,
                 upgrade: bool = False) -> None:
        self.request_version: Final = request_version
        self.request_keep_alive: Final = request_keep_alive
        self.close: Final = close
        self.via: Final = via
        self.upgrade: Final = upgrade

    def matches(self, request_version: bytes, request_keep_alive: bool, close: bool, via: bool,
                upgrade: bool) -> bool:
        """Every field equal (by value) to these; compares without building a context."""
        version = self.request_version
        return ((version is request_version or version == request_version)
                and self.request_keep_alive == request_keep_alive and self.close == close and self.via == via
                and self.upgrade == upgrade)

    def same(self, other: ResponseContext) -> bool:
        return self is other or self.matches(other.request_version, other.request_keep_alive, other.close,
                                             other.via, other.upgrade)


class Reply:
    """What forward_response gives: the framing of the body toward the client and the head's bytes.

    chunked: the body goes through encode_chunk()/last_chunk(). keep_alive: the client connection stays
    open after this response. data: the head to write. prefix, suffix: what goes before and after
    `head.forwardable` in `data` (b"" when the head has none, or on an upgrade): two heads with the same
    status line, version and framing get the same parts for the same context, whatever their fields.
    """

    __slots__ = ("chunked", "data", "keep_alive", "prefix", "suffix")

    def __init__(self, chunked: bool, keep_alive: bool, data: bytes, prefix: bytes, suffix: bytes) -> None:
        self.chunked: Final = chunked
        self.keep_alive: Final = keep_alive
        self.data: Final = data
        self.prefix: Final = prefix
        self.suffix: Final = suffix


def forward_response(head: ResponseHead, context: ResponseContext) -> Reply:
    """The response head to send to the client (always an HTTP/1.1 status line, RFC 9110 §2.5) and the
    framing of its body, for `head` answering a request in `context`."""
    version = context.request_version
    chunked, keep_alive = _framing(head, version, context.request_keep_alive, context.close)
    verbatim = head.forwardable
    if verbatim is not None and not context.upgrade:
        prefix, suffix = _parts(head, version, keep_alive, chunked, context.via)
        return Reply(chunked, keep_alive, b"".join((prefix, verbatim, suffix)), prefix, suffix)
    return Reply(chunked, keep_alive, _rebuilt_head(head, version, keep_alive, chunked, context.via, context.upgrade),
                 b"", b"")


def response_head(
    head: ResponseHead,
    *,
    request: RequestHead,
    keep_alive: bool,
    chunked: bool,
    via: bool = False,
    upgrade: bool = False,
) -> bytes:
    """The response head with a framing chosen by the caller (forward_response chooses it itself).

    request: the request it answers. keep_alive: whether the client connection stays open after this
        response (`Connection: close` is written when not; `Connection: keep-alive` for an HTTP/1.0
        client when it does). Interim 1xx heads get neither.
    chunked: the body will be written through encode_chunk()/last_chunk() (`Transfer-Encoding: chunked`
        is written; never for an HTTP/1.0 client, which cannot read it, RFC 9112 §7).
    upgrade: the connection switches protocols (101): the backend's Upgrade is kept with
        `Connection: upgrade`.
    """
    verbatim = head.forwardable
    if verbatim is not None and not upgrade:
        # Field lines the parser vouched for (see ResponseHead.forwardable), in one step; the general code
        # writes the same bytes.
        prefix, suffix = _parts(head, request.version, keep_alive, chunked, via)
        return b"".join((prefix, verbatim, suffix))
    return _rebuilt_head(head, request.version, keep_alive, chunked, via, upgrade)


def _rebuilt_head(head: ResponseHead, request_version: bytes, keep_alive: bool, chunked: bool, via: bool,
                  upgrade: bool) -> bytes:
    """response_head() from `head.headers`, line by line."""
    status = head.status
    code = _STATUS_BYTES.get(status) or str(status).encode("ascii")
    parts = [b"HTTP/1.1 ", code, b" ", head.reason, b"\r\n"]
    append = parts.append
    upgrade_value = b""
    drop: frozenset[bytes] = HOP_BY_HOP
    if head.connection and not HOP_BY_HOP.issuperset(head.connection):
        drop = HOP_BY_HOP.union(head.connection)
    for name, value in head.headers:
        lowered = name.lower()
        if lowered in drop:
            if lowered == _UPGRADE:
                upgrade_value = value
            continue
        if lowered == _CONTENT_LENGTH:
            value = _decimal(value)
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    if chunked and status >= 200:
        append(b"Transfer-Encoding: chunked\r\n")
    if upgrade:
        if upgrade_value:
            append(b"Upgrade: ")
            append(upgrade_value)
            append(b"\r\n")
        append(b"Connection: upgrade\r\n")
    elif status >= 200:
        if not keep_alive:
            append(b"Connection: close\r\n")
        elif request_version != b"1.1":
            append(b"Connection: keep-alive\r\n")
    if via:
        append(_VIA_LINES.get(head.version) or b"Via: " + head.version + b" " + VIA_PSEUDONYM + b"\r\n")
    append(b"\r\n")
    return b"".join(parts)


_STATUS_BYTES: Final = {status: str(status).encode("ascii") for status in range(100, 600)}


def verbatim_parts(head: ResponseHead, *, request: RequestHead, keep_alive: bool, chunked: bool,
                   via: bool = False) -> tuple[bytes, bytes]:
    """What goes before and after `head.forwardable` in response_head() (not for upgrades): the status
    line, then Transfer-Encoding, Connection and Via as response_head() decides them."""
    return _parts(head, request.version, keep_alive, chunked, via)


def _parts(head: ResponseHead, request_version: bytes, keep_alive: bool, chunked: bool,
           via: bool) -> tuple[bytes, bytes]:
    status = head.status
    code = _STATUS_BYTES.get(status) or str(status).encode("ascii")
    if status < 200:
        connection = b""
    elif not keep_alive:
        connection = b"Connection: close\r\n"
    elif request_version != b"1.1":
        connection = b"Connection: keep-alive\r\n"
    else:
        connection = b""
    prefix = b"".join((b"HTTP/1.1 ", code, b" ", head.reason, b"\r\n"))
    suffix = b"".join((
        b"Transfer-Encoding: chunked\r\n" if chunked and status >= 200 else b"",
        connection,
        (_VIA_LINES.get(head.version) or b"Via: " + head.version + b" " + VIA_PSEUDONYM + b"\r\n") if via else b"",
        b"\r\n",
    ))
    return prefix, suffix


def response_framing(head: ResponseHead, request: RequestHead, *, close: bool = False) -> tuple[bool, bool]:
    """(chunked, keep_alive) for sending `head`'s body to the client of `request`.

    A chunked or close-delimited body goes to an HTTP/1.1 client chunked (so the client connection
    outlives a backend that closes), to an HTTP/1.0 client close-delimited. The client connection stays
    open when the request allowed it, rsp does not want to `close`, and the body is not close-delimited.
    """
    return _framing(head, request.version, request.keep_alive, close)


def _framing(head: ResponseHead, request_version: bytes, request_keep_alive: bool, close: bool) -> tuple[bool, bool]:
    kind = head.body.kind
    if head.status < 200:
        return False, True
    client_11 = request_version == b"1.1"
    chunked = client_11 and (kind == "chunked" or kind == "close")
    until_close = (kind == "chunked" or kind == "close") and not client_11
    return chunked, request_keep_alive and not close and not until_close


def encode_chunk(data: bytes) -> bytes:
    """One chunk of the chunked coding (RFC 9112 §7.1). Empty data gives b"" (a zero-size chunk would
    end the body)."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK: Final = b"0\r\n\r\n"


def last_chunk(trailers: Headers = ()) -> bytes:
    """The last chunk and the trailer section (RFC 9112 §7.1.2), ending the chunked body."""
    if not trailers:
        return LAST_CHUNK
    parts = [b"0\r\n"]
    for name, value in trailers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)
