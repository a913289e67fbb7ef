"""An HTTP/1 exchange that became a tunnel (RFC 9110 §7.8 Upgrade, answered 101 Switching Protocols): from then
on both connections carry raw bytes (WebSocket, for one), and the exchange only logs and counts.

Also the bytes of a response head that no head cache keeps: interim (1xx) responses and the 101 itself.
"""

from __future__ import annotations

from rsp.http1 import forward
from rsp.http1.events import RequestHead, ResponseHead
from rsp.proxy.session_api import Http1ClientSide, UpstreamSide
from rsp.proxy.waits import WAIT_NONE


def uncached_head(head: ResponseHead, request: RequestHead, via: bool, upgrade: bool) -> bytes:
    """The bytes of an interim (1xx) or 101 head answering `request`, which no head cache keeps."""
    context = forward.ResponseContext(request.version, request.keep_alive, False, via, upgrade)
    return forward.forward_response(head, context).data


def open_tunnel(client: Http1ClientSide, upstream: UpstreamSide, head_bytes: bytes) -> None:
    """The backend's 101 head (`head_bytes`) to the client, then both sides carry raw bytes. Bytes either side
    sent after its head (a client's first WebSocket frame, a backend's greeting) go across now."""
    client.tunnel_mode = True
    client.deadline = 0.0  # a tunnel has no response to wait for (its idle timeout is the listener's)
    client.wait = WAIT_NONE
    client.write(head_bytes)
    early = client.parser.take_trailing_data()
    if early:
        upstream.write(early)
    trailing = upstream.parser.take_trailing_data()
    if trailing:
        client.write(trailing)
