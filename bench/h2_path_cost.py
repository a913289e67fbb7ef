"""What a small HTTP/2 request costs through the whole proxy, without sockets: the HTTP/2 session, its
server connection, each stream's exchange (routing, pool, balancer), the HTTP/1 request to the backend, the
backend's response parsed, and the response's frames written, on rsp's event loop and socket streams over
sockets whose send only counts (bench/http_path_micro.py's method), so only rsp's own code is counted.

    PYTHONPATH=src python bench/h2_path_cost.py              # µs per request (best of 7 windows)
    PYTHONPATH=src python bench/h2_path_cost.py --callgrind  # + instructions per request (valgrind)
    PYTHONPATH=src python bench/h2_path_cost.py --http1 --callgrind  # the same for an HTTP/1.1 client
    PYTHONPATH=src python bench/h2_path_cost.py --request-id --callgrind  # a new X-Request-Id in every response

--request-id: what bench/h2_load.py's nginx sends (bench/configs.py): every response head differs, so no
memo of a repeated head answers.

--http1: the same proxy, backend response and counting, with BATCH keep-alive HTTP/1.1 client connections
each sending the same GET (h2load's fields) per round instead: what HTTP/2 adds is the difference.

One read carries BATCH requests (what h2load -m 10 sends: HEADERS with END_STREAM, HPACK-encoded by h2 as a
client, in advance); each stream takes its own idle backend connection, which then gets nginx's response to
a small GET; one event-loop turn later the session writes the frames (Http2Session.flush_soon). Instructions
are callgrind's totals of two run lengths, differenced, so start-up cancels out and the figure repeats under
load (COMMON.md). Compare with bench/http_path_micro.py (the HTTP/1 path, same backend response).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import subprocess
import sys
import time
from typing import Any

import h2.config
import h2.connection

from rsp.config.lua_loader import parse_config
from rsp.proxy.access_log import AccessLog
from rsp.proxy.client import ClientConnection
from rsp.proxy.h2_session import Http2Session
from rsp.proxy.http_proxy import HttpProxy
from rsp.proxy.http_upstream import UpstreamConnection
from rsp.proxy.pools import PoolRuntime
from rsp.transport.event_loop import RspEventLoop
from rsp.transport.stream import SocketStream

BATCH = 10  # streams per read (h2load -m 10)
# What h2load sends for `h2load http://127.0.0.1:8080/small`.
REQUEST = [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1:8080"), (":path", "/small"),
           ("user-agent", "h2load nghttp2/1.52.0")]
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 05:46:08 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 97\r\n"
    b"Last-Modified: Sat, 28 Nov 2026 05:36:08 GMT\r\nConnection: keep-alive\r\nETag: \"6569\"\r\n"
    b"Accept-Ranges: bytes\r\n\r\n" + b"x" * 97
)
CONFIG = ('listen = {{ port = 8080, mode = "http", http2 = { mode = "prior-knowledge",'
          ' max_streams_per_connection = 2000000000 } }}\nbackends = { "127.0.0.1:9" }\n'
          'http = { access_log = "off", pool_max_requests = 1000000000 }\n')


class CountingSocket(socket.socket):
    """A real (unconnected) socket whose send only counts (rsp's own stream sits above it)."""

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


def encoded_reads(reads: int) -> list[bytes]:
    """The client's bytes for `reads` reads of BATCH requests each; the first also carries the preface,
    SETTINGS and a connection window opened wide."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.increment_flow_control_window(2**30)
    out = []
    sid = 1
    for _ in range(reads):
        for _ in range(BATCH):
            client.send_headers(sid, REQUEST, end_stream=True)
            sid += 2
        out.append(client.data_to_send())
    return out


HTTP1_REQUEST = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: h2load nghttp2/1.52.0\r\n\r\n"


class Path:
    """A proxy with one HTTP/2 client connection (or BATCH HTTP/1.1 ones) and BATCH idle backend
    connections."""

    def __init__(self, reads: int, http1: bool = False, request_id: bool = False) -> None:
        self.http1 = http1
        self.request_id = request_id
        self.responses = 0
        self.reads = encoded_reads(reads + 1) if not http1 else []
        self.next = 0
        self.loop = loop = RspEventLoop()
        asyncio.set_event_loop(loop)
        cfg = parse_config(CONFIG, "bench.lua")
        pools = {name: PoolRuntime(spec, loop.time) for name, spec in cfg.pools.items()}
        proxy = HttpProxy(loop, cfg, pools, "default", AccessLog("off"))
        record = pools["default"].records[0]
        idle = proxy.idle_pools[record]
        self.upstreams = []
        for _ in range(BATCH):
            upstream = UpstreamConnection(loop, record, idle)
            _, sock = stream(loop, upstream)
            idle.put(upstream, loop.time())
            self.upstreams.append((upstream, sock))
        settings = cfg.listeners[0].http2
        assert settings is not None
        self.session = Http2Session(proxy, settings, b"http")
        self.client_stream, self.client_sock = stream(loop, self.session)
        self.clients: list[tuple[ClientConnection, SocketStream, CountingSocket]] = []
        for _ in range(BATCH if http1 else 0):
            client = ClientConnection(proxy)
            self.clients.append((client, *stream(loop, client)))
        self.round()

    def turn(self) -> None:
        """One event-loop turn: the callbacks queued so far (the session's flush) run."""
        self.loop.call_soon(self.loop.stop)
        self.loop.run_forever()

    def response(self) -> bytes:
        if not self.request_id:
            return RESPONSE
        self.responses += 1
        return RESPONSE.replace(b"\r\n\r\n", b"\r\nX-Request-Id: %032x\r\n\r\n" % self.responses, 1)

    def round(self) -> None:
        if self.http1:
            for client, _stream, _sock in self.clients:
                client.data_received(HTTP1_REQUEST)
            for upstream, _sock in self.upstreams:
                upstream.data_received(self.response())
            self.turn()
            return
        data = self.reads[self.next]
        self.next += 1
        self.session.data_received(data)
        for upstream, _sock in self.upstreams:
            upstream.data_received(self.response())
        self.turn()

    def check(self) -> None:
        if self.http1:
            assert all(sock.written and not s.is_closing() for _, s, sock in self.clients)
            assert all(sock.written for _, sock in self.upstreams)
            return
        assert not self.client_stream.is_closing() and not self.session.closed
        assert not self.session.streams, "streams left open: a response did not finish"
        assert all(sock.written for _, sock in self.upstreams) and self.client_sock.written


def best_us(http1: bool, request_id: bool, windows: int = 7, calls: int = 40) -> float:
    path = Path(windows * calls, http1, request_id)
    best = float("inf")
    for _ in range(windows):
        t0 = time.process_time()
        for _ in range(calls):
            path.round()
        best = min(best, (time.process_time() - t0) / (calls * BATCH) * 1e6)
    path.check()
    return best


ENCODED_READS = 130  # encoded whatever the run length, so that the client's encoding cancels out


def run_rounds(n: int, http1: bool, request_id: bool) -> None:
    path = Path(ENCODED_READS, http1, request_id)
    for _ in range(n):
        path.round()
    path.check()


def callgrind_per_request(http1: bool, request_id: bool) -> float:
    totals = []
    for rounds in (20, 120):
        proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                               __file__, "--rounds", str(rounds), *(["--http1"] if http1 else []),
                               *(["--request-id"] if request_id else [])],
                              capture_output=True, text=True, check=True)
        match = re.search(r"Collected : (\d+)", proc.stderr)
        assert match, proc.stderr[-500:]
        totals.append(int(match.group(1)))
    return (totals[1] - totals[0]) / (100 * BATCH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callgrind", action="store_true", help="also count instructions (valgrind)")
    parser.add_argument("--http1", action="store_true", help="HTTP/1.1 clients instead, for comparison")
    parser.add_argument("--request-id", action="store_true", help="a new X-Request-Id in every response")
    parser.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds:
        run_rounds(args.rounds, args.http1, args.request_id)
        return
    import rsp.proxy.h2_session as session_module
    compiled = session_module.__file__ is not None and session_module.__file__.endswith(".so")
    what = f"HTTP/1.1, {BATCH} keep-alive clients" if args.http1 else f"HTTP/2, {BATCH} streams per read"
    print(f"rsp {what} ({'h2_session compiled' if compiled else 'h2_session pure Python'}): "
          f"{best_us(args.http1, args.request_id):.1f} µs/request (best of 7 windows, CPU time)")
    if args.callgrind:
        print(f"  callgrind: {callgrind_per_request(args.http1, args.request_id):,.0f} instructions/request")


if __name__ == "__main__":
    main()
