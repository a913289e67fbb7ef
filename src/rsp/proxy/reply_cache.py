"""The proxy's head-output caches: the last forwarded head of a connection and its bytes, reused when the
next head has the same inputs.

A keep-alive client repeats its request head and a backend its response head (the parsers' memos hand
out heads whose fields are the same objects), so the forwarded bytes are usually those of the previous
message. Both caches key on the declared inputs of the function whose output they keep, compared by value:
- forward.forward_request(head, RequestContext): `same_request_fields` lists what it reads of a head;
- forward.forward_response(head, ResponseContext): `same_status_line` and `same_response_fields`.
Everything else such a function reads is a field of its context (tests/http1/test_forward.py fails when
one gains another parameter), and the context is part of the key. Comparing bytes costs little when both
sides are the same object, which is what the memos give.
"""

from __future__ import annotations

from rsp.http1.events import Framing, RequestHead, ResponseHead, _Head
from rsp.http1.forward import Reply, RequestContext, ResponseContext, forward_request, forward_response

_SLASH = 47  # an origin-form target begins with "/" (RFC 9112 §3.2.1)


# Every comparison below is by value. Each tries `is` first: an object equals itself (heads and their
# fields are immutable), and the parsers' memos hand out the same objects for the same bytes, so the
# usual case costs a pointer comparison instead of a call (see docs/performance.md).


def same_framing(a: Framing, b: Framing) -> bool:
    return a is b or (a.kind == b.kind and a.length == b.length)


def _same_section(a: _Head, b: _Head, a_forwardable: bytes | None,
                  b_forwardable: bytes | None, a_connection: tuple[bytes, ...],
                  b_connection: tuple[bytes, ...]) -> bool:
    """The field sections of two heads as forwarding reads them: the lines (`raw` when the parser kept it,
    else the split `headers`), the lines it may copy (`forwardable`) and the Connection options."""
    a_raw = a.raw
    b_raw = b.raw
    if a_raw:
        if a_raw is not b_raw and a_raw != b_raw:
            return False
    elif b_raw or a.headers != b.headers:
        return False
    return ((a_forwardable is b_forwardable
             or (a_forwardable is not None and b_forwardable is not None and a_forwardable == b_forwardable))
            and (a_connection is b_connection or a_connection == b_connection))


def same_request_fields(head: RequestHead, last: RequestHead) -> bool:
    """Everything forward_request reads of a request head except its target, equal by value."""
    if head is last:
        return True
    c = head.upgrade
    d = last.upgrade
    return (_same_section(head, last, head.forwardable, last.forwardable, head.connection, last.connection)
            and (head.method is last.method or head.method == last.method)
            and (head.version is last.version or head.version == last.version)
            and (head.host is last.host or head.host == last.host)
            and (c is d or (c is not None and d is not None and c == d))
            and (head.body is last.body or same_framing(head.body, last.body)))


def same_status_line(head: ResponseHead, last: ResponseHead) -> bool:
    """What forward_response reads of a response head besides its field lines, equal by value: the status
    line, the version (Via) and the framing."""
    return (head.status == last.status and (head.reason is last.reason or head.reason == last.reason)
            and (head.version is last.version or head.version == last.version)
            and (head.body is last.body or same_framing(head.body, last.body)))


def same_response_fields(head: ResponseHead, last: ResponseHead) -> bool:
    """The field lines of a response head as forward_response reads them, equal by value."""
    return head is last or _same_section(head, last, head.forwardable, last.forwardable, head.connection,
                                         last.connection)


class RequestHeadCache:
    """One client connection's last forwarded request head (see the module docstring)."""

    __slots__ = ("context", "data", "enabled", "head", "rest")

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled  # off: every call forwards anew (tests compare both)
        self.head: RequestHead | None = None
        self.context: RequestContext | None = None
        self.data = b""
        self.rest = b""  # data after its target (origin-form targets), else b""

    def forget(self) -> None:
        """Drop the last head and its bytes (an idle connection: rsp.proxy.http_proxy)."""
        self.head = None
        self.context = None
        self.data = b""
        self.rest = b""

    def forward(self, head: RequestHead, context: RequestContext) -> bytes:
        """forward_request(head, context), from the cache when the inputs are those of the last call."""
        last = self.head
        last_context = self.context
        if (self.enabled and last is not None and last_context is not None
                and (context is last_context or context.same(last_context)) and same_request_fields(head, last)):
            target = head.target
            if target is last.target or target == last.target:
                return self.data
            if target[0] == _SLASH and last.target[0] == _SLASH and self.rest:
                # The same head with another path: an origin-form target is forwarded as it came, right
                # after the method, and nothing after it depends on it (forward.forward_request).
                return b"".join((head.method, b" ", target, self.rest))
        out = forward_request(head, context)
        self.head = head
        self.context = context
        self.data = out
        self.rest = out[len(head.method) + 1 + len(head.target):] if head.target[0] == _SLASH else b""
        return out


class ResponseHeadCache:
    """One backend connection's last forwarded response head (see the module docstring). `head_bytes`
    returns the bytes; `reply` then holds their framing (chunked, keep_alive)."""

    __slots__ = ("context", "enabled", "head", "reply")

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled  # off: every call forwards anew (tests compare both)
        self.head: ResponseHead | None = None
        self.context: ResponseContext | None = None
        self.reply: Reply | None = None

    def head_bytes(self, head: ResponseHead, request_version: bytes, request_keep_alive: bool, close: bool,
                   via: bool, upgrade: bool) -> bytes:
        """forward_response(head, ResponseContext(...these...)).data, from the cache when the inputs are
        those of the last call. The context is built only when the cache misses."""
        last = self.head
        context = self.context
        reply = self.reply
        if (self.enabled and last is not None and context is not None and reply is not None
                and context.matches(request_version, request_keep_alive, close, via, upgrade)
                and (head is last or same_status_line(head, last))):
            verbatim = head.forwardable
            if verbatim is not None and reply.prefix and head is not last:
                # The head's own field lines between the same status line and closing lines: what
                # forward_response writes for any head whose field lines it may copy (comparing them with
                # the last head's first would cost more than the join).
                return b"".join((reply.prefix, verbatim, reply.suffix))
            if same_response_fields(head, last):
                return reply.data
        context = ResponseContext(request_version, request_keep_alive, close, via, upgrade)
        reply = forward_response(head, context)
        self.head = head
        self.context = context
        self.reply = reply
        return reply.data
