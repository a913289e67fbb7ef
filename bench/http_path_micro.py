"""Per-request Python cost of rsp's HTTP path, without sockets: a client connection and a pooled upstream
connection on rsp's socket streams (on rsp's event loop) over sockets whose send only counts, so only rsp's
own code (stream, parser, routing, balancer, exchange, serializer) is timed.
Run: .venv/bin/python bench/http_path_micro.py
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from rsp.config.lua_loader import parse_config
from rsp.proxy.access_log import AccessLog
from rsp.proxy.client import ClientConnection
from rsp.proxy.http_proxy import HttpProxy
from rsp.proxy.http_upstream import UpstreamConnection
from rsp.proxy.pools import PoolRuntime
from rsp.transport.event_loop import RspEventLoop
from rsp.transport.stream import SocketStream

REQUEST = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 05:46:08 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 97\r\n"
    b"Last-Modified: Sat, 28 Nov 2026 05:36:08 GMT\r\nConnection: keep-alive\r\nETag: \"6569\"\r\n"
    b"Accept-Ranges: bytes\r\n\r\n" + b"x" * 97
)


class CountingSocket(socket.socket):
    """A real (unconnected) socket whose send only counts: the stream above it is rsp's own
    (rsp.transport.stream), so only the kernel's part of a send is left out."""

    written = 0

    def send(self, data: Any, flags: int = 0) -> int:
        self.written += len(data)
        return len(data)


def stream(loop: asyncio.AbstractEventLoop, protocol: Any) -> tuple[SocketStream, CountingSocket]:
    sock = CountingSocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    s = SocketStream(loop, sock, protocol, ("127.0.0.1", 40000))
    protocol.connection_made(s)
    return s, sock


ROUNDS = 7
DISTINCT = 1000


def main(n: int = 20_000) -> None:
    loop = RspEventLoop()  # what rsp runs on (rsp.cli.new_event_loop)
    asyncio.set_event_loop(loop)
    cfg = parse_config('listen = {{ port = 8080, mode = "http" }}\nbackends = { "127.0.0.1:9" }\n'
                       'http = { access_log = "off", pool_max_requests = 1000000000 }\n', "bench.lua")
    pools = {name: PoolRuntime(spec, loop.time) for name, spec in cfg.pools.items()}
    proxy = HttpProxy(loop, cfg, pools, "default", AccessLog("off"))
    record = pools["default"].records[0]
    idle = proxy.idle_pools[record]
    upstream = UpstreamConnection(loop, record, idle)
    _, upstream_sock = stream(loop, upstream)
    idle.put(upstream, loop.time())
    client = ClientConnection(proxy)
    client_stream, client_sock = stream(loop, client)
    # Identical heads (what wrk and a static nginx produce; the parsers' one-head memo answers), a request
    # id in every response (the response parser's near memo answers) and distinct heads (a different
    # path and a different ETag every time: every head is parsed in full).
    same = [(REQUEST, RESPONSE)] * DISTINCT
    distinct = [(REQUEST.replace(b"/small", b"/small?%d" % i),
                 RESPONSE.replace(b'ETag: "6569"', b'ETag: "%d"' % i)) for i in range(DISTINCT)]
    # What the benchmark's nginx sends (bench/configs.py): the same request, a request id in every response.
    request_id = [(REQUEST, RESPONSE.replace(b'ETag: "6569"\r\n', b'ETag: "6569"\r\nX-Request-Id: %032x\r\n' % i))
                  for i in range(DISTINCT)]
    for label, pairs in (("identical heads", same), ("a request id in every response", request_id),
                         ("distinct heads", distinct)):
        best = float("inf")
        for _ in range(ROUNDS):  # the best round: other load on the machine only ever adds time
            start = time.perf_counter()
            for i in range(n):
                request, response = pairs[i % DISTINCT]
                client.data_received(request)
                upstream.data_received(response)
            best = min(best, time.perf_counter() - start)
        assert not client_stream.is_closing() and client_sock.written and upstream_sock.written
        print(f"rsp HTTP path, Python only, {label}: {best / n * 1e6:.2f} us per request "
              f"(best of {ROUNDS} x {n} requests)")


if __name__ == "__main__":
    main()
