"""A head's verdict, written once: from the start line and the declared field values to the head event.

Both paths of both parsers end here: the fast path with the values its expression captured, the general
path with the values it collected (list fields joined with ", ", RFC 9110 §5.3). The functions receive the
captured fields of rsp.http1.head_fields by their declared names and nothing else of the field section
(`headers`, `raw` and `forwardable` are passed through to the event), so a verdict cannot come to depend on
a field the memos do not key on (tests/http1/test_head_fields.py checks the parameter names).
"""

from __future__ import annotations

from typing import Final

from rsp.errors import ProtocolError
from rsp.http1 import fields
from rsp.http1.events import CHUNKED, NO_BODY, UNTIL_CLOSE, Framing, Headers, RequestHead, ResponseHead
from rsp.http1.fields import COMMON_CONNECTION
from rsp.http1.grammar import CONNECT, HEAD_METHOD, NO_CONTENT_STATUS, V10, V11, target_authority
from rsp.http1.limits import MAX_CONTENT_LENGTH_DIGITS

# Content-Length values seen, validated, with their framing: a keep-alive backend serving the same
# resources repeats them, and a dictionary hit replaces a regular expression, int() and an allocation.
# Only values without leading zeros (which forwarding copies as they are). Bounded; once full, new values
# are validated every time (still correct, just not cached). Keyed by the declared field's value alone.
_MAX_CACHED_LENGTHS: Final = 4096
_LENGTH_FRAMINGS: Final[dict[bytes, Framing]] = {}


def _length_framing(value: bytes, status: int, memos: bool) -> Framing:
    length = fields.content_length(value, MAX_CONTENT_LENGTH_DIGITS, status)
    framing = Framing("length", length) if length else NO_BODY
    if memos and len(_LENGTH_FRAMINGS) < _MAX_CACHED_LENGTHS and (value[0] != 48 or len(value) == 1):
        _LENGTH_FRAMINGS[value] = framing
    return framing


def message_verdict(
    version: bytes,
    content_length: bytes | None,
    transfer_encoding: bytes | None,
    connection: bytes | None,
    forwardable: bytes | None,
    vetted: frozenset[bytes],
    status: int,
    memos: bool,
) -> tuple[tuple[bytes, ...], bool, Framing | None, bytes | None]:
    """What requests and responses decide alike: (Connection options, keep-alive, framing, forwardable).

    framing is None when the head has neither Transfer-Encoding nor Content-Length (the caller knows what
    that means for its kind). forwardable is None when forwarding has to rebuild the section: a Connection
    option naming a field the fast path did not vet, a Content-Length with leading zeros. Errors answer
    `status` (400 or 502; an unsupported coding 501 in a request).
    """
    options: tuple[bytes, ...] = ()
    if connection is not None:
        common = COMMON_CONNECTION.get(connection)  # the usual values, all of them vetted
        if common is not None:
            options = common
        else:
            options = fields.connection_options(connection, status)
            if forwardable is not None and not vetted.issuperset(options):
                forwardable = None
    # RFC 9112 §9.3 / Appendix C.2.2: HTTP/1.0 persists only with the keep-alive option.
    keep_alive = b"close" not in options and (version == V11 or b"keep-alive" in options)

    # A message the proxy cannot frame unambiguously is refused even where its framing would not be used
    # (a response to HEAD, 1xx, 204, 304).
    framing: Framing | None = None
    if transfer_encoding is not None:
        if content_length is not None:
            raise ProtocolError("both Transfer-Encoding and Content-Length (RFC 9112 §6.1)", status)
        if version == V10:
            kind = "request" if status == 400 else "response"
            raise ProtocolError(f"Transfer-Encoding in an HTTP/1.0 {kind} (RFC 9112 §6.1)", status)
        fields.check_transfer_encoding(transfer_encoding, status, 501 if status == 400 else status)
        framing = CHUNKED
    elif content_length is not None:
        cached = _LENGTH_FRAMINGS.get(content_length) if memos else None  # values without leading zeros only
        if cached is not None:
            framing = cached
        else:
            framing = _length_framing(content_length, status, memos)
            if content_length[0] == 48 and len(content_length) > 1:
                forwardable = None  # forwarding writes it without the leading zeros
    return options, keep_alive, framing, forwardable


def request_verdict(
    method: bytes,
    target: bytes,
    version: bytes,
    host: bytes | None,
    content_length: bytes | None,
    transfer_encoding: bytes | None,
    connection: bytes | None,
    upgrade: bytes | None,
    expect: bytes | None,
    headers: Headers | None,
    raw: bytes,
    forwardable: bytes | None,
    vetted: frozenset[bytes],
    valid_host: bytes | None,
    memos: bool,
) -> RequestHead:
    """The event of a request head; `valid_host` is a Host value already found valid (or None)."""
    # The authority of the target URI: the target's (absolute-form, CONNECT), else Host (RFC 9112 §3.2).
    authority = target_authority(method, target)
    if host is None:
        if version == V11:
            raise ProtocolError("HTTP/1.1 request without Host (RFC 9112 §3.2)", 400)
    else:
        if host != valid_host and not fields.valid_host(host):
            raise ProtocolError("invalid Host field value (RFC 9112 §3.2)", 400)
        if not authority:
            authority = host

    options, keep_alive, framing, forwardable = message_verdict(
        version, content_length, transfer_encoding, connection, forwardable, vetted, 400, memos
    )
    if framing is None:
        framing = NO_BODY
    elif method == CONNECT:
        raise ProtocolError("a CONNECT request has no content (RFC 9110 §9.3.6)", 400)
    expect_continue = False
    if version == V11:
        # Expect: 100-continue is the only expectation there is (RFC 9110 §10.1.1); an HTTP/1.0 client's
        # is ignored.
        expect_continue = expect is not None and (expect == b"100-continue" or expect.lower() == b"100-continue")

    switch = None
    # RFC 9110 §7.8 (an HTTP/1.0 Upgrade is ignored). h2c is never passed on: a tunnelled HTTP/2
    # connection would carry requests past every rule of the proxy ("h2c smuggling").
    if (
        upgrade is not None
        and version == V11
        and b"upgrade" in options
        and b"h2c" not in [element.lower() for element in fields.split_list(upgrade)]
    ):
        switch = upgrade
    return RequestHead(
        method, target, version, headers, keep_alive, framing, switch, expect_continue, authority, options, raw,
        forwardable,
    )


def response_verdict(
    status: int,
    reason: bytes,
    version: bytes,
    method: bytes,
    content_length: bytes | None,
    transfer_encoding: bytes | None,
    connection: bytes | None,
    headers: Headers | None,
    raw: bytes,
    forwardable: bytes | None,
    vetted: frozenset[bytes],
    memos: bool,
) -> ResponseHead:
    """The event of a response head to a request with this `method`."""
    options, keep_alive, framing, forwardable = message_verdict(
        version, content_length, transfer_encoding, connection, forwardable, vetted, 502, memos
    )
    if framing is None:
        framing = UNTIL_CLOSE
    # RFC 9112 §6.3 rules 1 and 2.
    if status in NO_CONTENT_STATUS or method == HEAD_METHOD or (method == CONNECT and status < 300):
        framing = NO_BODY
    if framing is UNTIL_CLOSE:
        keep_alive = False
    return ResponseHead(status, reason, version, headers, keep_alive, framing, options, raw, forwardable)
