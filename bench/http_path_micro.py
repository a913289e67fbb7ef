"""Per-request Python cost of rsp's HTTP path, without sockets: a client connection and a pooled upstream
connection driven with fake transports, so only rsp's own code (parser, routing, balancer, exchange,
serializer) is timed. Run: .venv/bin/python bench/http_path_micro.py
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import uvloop

from rsp.config.lua_loader import parse_config
from rsp.proxy.access_log import AccessLog
from rsp.proxy.http_proxy import HttpProxy
from rsp.proxy.http_upstream import UpstreamConnection
from rsp.proxy.pools import PoolRuntime

REQUEST = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 05:46:08 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 97\r\n"
    b"Last-Modified: Sat, 28 Nov 2026 05:36:08 GMT\r\nConnection: keep-alive\r\nETag: \"6569\"\r\n"
    b"Accept-Ranges: bytes\r\n\r\n" + b"x" * 97
)


class FakeTransport:
    """Just enough of asyncio.Transport for the proxy: records how many bytes were written."""

    def __init__(self) -> None:
        self.written = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, parts: Any) -> None:
        for p in parts:
            self.written += len(p)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def set_write_buffer_limits(self, high: int, low: int) -> None: ...
    def can_write_eof(self) -> bool:
        return True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


ROUNDS = 7
DISTINCT = 1000


def main(n: int = 20_000) -> None:
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    cfg = parse_config('listen = {{ port = 8080, mode = "http" }}\nbackends = { "127.0.0.1:9" }\n'
                       'http = { access_log = "off", pool_max_requests = 1000000000 }\n', "bench.lua")
    pools = {name: PoolRuntime(spec, loop.time) for name, spec in cfg.pools.items()}
    proxy = HttpProxy(loop, cfg, pools, "default", AccessLog("off"))
    record = pools["default"].records[0]
    idle = proxy.idle_pools[record]
    upstream = UpstreamConnection(loop, record, idle)
    upstream.connection_made(FakeTransport())  # type: ignore[arg-type]
    idle.put(upstream, loop.time())
    client = proxy.protocol_factory()
    client_transport = FakeTransport()
    client.connection_made(client_transport)  # type: ignore[arg-type]
    # Identical heads (what wrk and a static nginx produce; the parsers' one-head memo answers) and
    # distinct heads (a different path and response header every time: every head is parsed in full).
    same = [(REQUEST, RESPONSE)] * DISTINCT
    distinct = [(REQUEST.replace(b"/small", b"/small?%d" % i),
                 RESPONSE.replace(b'ETag: "6569"', b'ETag: "%d"' % i)) for i in range(DISTINCT)]
    for label, pairs in (("identical heads", same), ("distinct heads", distinct)):
        best = float("inf")
        for _ in range(ROUNDS):  # the best round: other load on the machine only ever adds time
            start = time.perf_counter()
            for i in range(n):
                request, response = pairs[i % DISTINCT]
                client.data_received(request)
                upstream.data_received(response)
            best = min(best, time.perf_counter() - start)
        assert not client_transport.closed
        print(f"rsp HTTP path, Python only, {label}: {best / n * 1e6:.2f} us per request "
              f"(best of {ROUNDS} x {n} requests)")


if __name__ == "__main__":
    main()
