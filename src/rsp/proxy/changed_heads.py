"""What a filter changed in a head, and the request head an exchange sends to its backend.

A filter may change a head by assignment (`request.headers = ...`, which marks it changed) or in place (a
list edited where it lies): the run keeps a key of each head as it came and compares (docs/architecture.md,
"Head caches"). The backend gets, cheapest first: the cached forwarded head when nothing changed; that head
with the lines a filter only appended (a Lua `ngx.req.set_header` of a new name); or the request serialised
anew, its framing recomputed (rsp.http1.serialise).
"""

from __future__ import annotations

from rsp.http1.serialise import request_with_added_fields, serialise_request
from rsp.pipeline.messages import Header, Request, Response
from rsp.proxy.session_api import ExchangeSide


def request_key(request: Request) -> tuple[object, ...]:
    """What a request phase may change."""
    return (request.method, request.authority, request.target, tuple(request.headers), request.body_length)


def mark_changed(request: Request, was: tuple[object, ...]) -> None:
    """Mark `request` changed when a filter changed it in place (a list edited where it lies, a balancer
    filter after access) rather than through its setters; `was`: its request_key as it came."""
    if not request.changed and request_key(request) != was:
        request.changed = True


def response_key(response: Response) -> tuple[object, ...]:
    """What a response phase may change; lines a filter add()ed last are not a change (Response.add)."""
    headers = response.headers
    added = response.added
    if added is not None:
        n = len(added)
        if len(headers) >= n and headers[len(headers) - n:] == added:
            headers = headers[:len(headers) - n]
    return (response.status, response.reason, tuple(headers), response.body_length)


def added_fields(request: Request, was: tuple[object, ...]) -> list[Header] | None:
    """The field lines a filter appended to the request as it came (`was`, its request_key), when that is
    all it changed (the forwarded head then takes them as they are: serialise.request_with_added_fields);
    else None."""
    before = was[3]
    if request.method != was[0] or request.authority != was[1] or request.target != was[2] or \
            request.body_length != was[4] or not isinstance(before, tuple):
        return None
    headers = request.headers
    count = len(before)
    if len(headers) <= count or tuple(headers[:count]) != before:
        return None
    return headers[count:]


def backend_head(exchange: ExchangeSide, request: Request | None, was: tuple[object, ...]) -> bytes:
    """The request head for `exchange`'s backend: the cached forwarded head when no filter changed `request`
    (None: no filter asked for it; `was`: its request_key as it came)."""
    h1 = exchange.h1
    if request is not None:
        mark_changed(request, was)
        if request.changed or h1 is None:  # (a request of another protocol has no HTTP/1 bytes to reuse)
            if h1 is not None:
                added = added_fields(request, was)
                if added is not None:
                    head = request_with_added_fields(h1.forwarded.forward(exchange.head, h1.context), added)
                    if head is not None:
                        return head
            return serialise_request(request, exchange.head, exchange.client.context)
    assert h1 is not None
    return h1.forwarded.forward(exchange.head, h1.context)


def unfiltered_head(exchange: ExchangeSide, request: Request | None) -> bytes:
    """The request head for the backend of `exchange` when the listener has no filters: the HTTP/1 client's
    forwarded head, or the Request an HTTP/2 stream made (`request`) serialised."""
    h1 = exchange.h1
    if h1 is not None:
        return h1.forwarded.forward(exchange.head, h1.context)
    assert request is not None  # (a client that is not HTTP/1 gives its Request)
    return serialise_request(request, exchange.head, exchange.client.context)
