"""What the request pipeline costs per request, in CPU instructions counted by valgrind (deterministic, so the
figure holds on a busy machine where wall-clock timings do not).

Three builds of HTTP mode's path, the way bench/http_path_micro.py drives it (a client connection and a pooled
backend connection on rsp's socket streams over sockets whose send only counts, on rsp's event loop):

    before       another checkout's src/ (--base; the commit before the pipeline, built with scripts/build-native)
    no filters   this checkout: a listener without filters (the fast path)
    empty access this checkout: one Python filter whose access() returns None

Each is run under `valgrind --tool=cachegrind` twice, for FEW and MANY requests; (I(MANY) - I(FEW)) /
(MANY - FEW) is the cost of one request without start-up. PYTHONHASHSEED=0 for repeatable dict layouts.

Run (from the repository root, both checkouts compiled):
    .venv/bin/python bench/pipeline_cost.py --base /tmp/base/src
One workload by hand (what valgrind runs):
    PYTHONPATH=src .venv/bin/python bench/pipeline_cost.py --workload 1000 --filters none --heads identical
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

FEW = 1000
MANY = 5000
HEADS = ("identical", "distinct")
FILTERS = ("none", "empty-access")

REQUEST = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 05:46:08 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 97\r\n"
    b"Last-Modified: Sat, 28 Nov 2026 05:36:08 GMT\r\nConnection: keep-alive\r\nETag: \"6569\"\r\n"
    b"Accept-Ranges: bytes\r\n\r\n" + b"x" * 97
)
DISTINCT = 1000
# cachegrind's summary line: "==123== I   refs:      1,234,567,890"
I_REFS_RE = re.compile(r"I\s+refs:\s+([\d,]+)")


class CountingSocket(socket.socket):
    """A real (unconnected) socket whose send only counts (see bench/http_path_micro.py)."""

    written = 0

    def send(self, data: Any, flags: int = 0) -> int:
        self.written += len(data)
        return len(data)

    def sendmsg(self, buffers: Any, *rest: Any) -> int:  # type: ignore[override]
        n = sum(len(b) for b in buffers)
        self.written += n
        return n


def wire_session(loop: Any, proxy: Any, socket_class: type[CountingSocket] = CountingSocket) -> tuple[Any, ...]:
    """A client connection and one idle backend connection of `proxy`'s default pool, each on a real
    SocketStream over a `socket_class` socket: (client, its stream, its socket, upstream, its socket). The
    workloads of pipeline_cost, lua_cost and cache_cost drive this same session."""
    from rsp.proxy.client import ClientConnection
    from rsp.proxy.http_upstream import UpstreamConnection
    from rsp.transport.stream import SocketStream

    def stream(protocol: Any) -> tuple[SocketStream, CountingSocket]:
        sock = socket_class(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        s = SocketStream(loop, sock, protocol, ("127.0.0.1", 40000))
        protocol.connection_made(s)
        return s, sock

    record = proxy.pools["default"].records[0]
    idle = proxy.idle_pools[record]
    upstream = UpstreamConnection(loop, record, idle)
    _, upstream_sock = stream(upstream)
    idle.put(upstream, loop.time())
    client = ClientConnection(proxy)
    client_stream, client_sock = stream(client)
    return client, client_stream, client_sock, upstream, upstream_sock


def cachegrind_instructions(argv: list[str], env: dict[str, str]) -> int:
    """The instructions valgrind's cachegrind counts for `python argv...` (the whole run)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={tmp}/cg.out",
             sys.executable, *argv], env=env, capture_output=True, text=True, check=True)
    found = I_REFS_RE.search(out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def workload(n: int, filters: str, heads: str) -> None:
    """n requests through the HTTP path of whichever rsp is on sys.path."""
    from rsp.config.lua_loader import parse_config
    from rsp.proxy.access_log import AccessLog
    from rsp.proxy.http_proxy import HttpProxy
    from rsp.proxy.pools import PoolRuntime
    from rsp.transport.event_loop import RspEventLoop

    loop = RspEventLoop()
    asyncio.set_event_loop(loop)
    cfg = parse_config('listen = {{ port = 8080, mode = "http" }}\nbackends = { "127.0.0.1:9" }\n'
                       'http = { access_log = "off", pool_max_requests = 1000000000 }\n', "bench.lua")
    pools = {name: PoolRuntime(spec, loop.time) for name, spec in cfg.pools.items()}
    extra: dict[str, Any] = {}
    if filters == "empty-access":
        from rsp.pipeline.phases import Chain, ExchangeView, Filter, Verdict

        class EmptyAccess(Filter):
            def access(self, exchange: ExchangeView) -> Verdict:
                return None

        extra["chain"] = Chain([EmptyAccess()])
    proxy = HttpProxy(loop, cfg, pools, "default", AccessLog("off"), **extra)
    client, client_stream, client_sock, upstream, upstream_sock = wire_session(loop, proxy)
    if heads == "identical":
        pairs = [(REQUEST, RESPONSE)] * DISTINCT
    else:
        pairs = [(REQUEST.replace(b"/small", b"/small?%d" % i), RESPONSE.replace(b'ETag: "6569"', b'ETag: "%d"' % i))
                 for i in range(DISTINCT)]
    for i in range(n):
        request, response = pairs[i % DISTINCT]
        client.data_received(request)
        upstream.data_received(response)
    assert not client_stream.is_closing() and client_sock.written and upstream_sock.written


def instructions(src: str, n: int, filters: str, heads: str) -> int:
    """Instructions valgrind counts for one workload run with `src` first on the path."""
    env = dict(os.environ, PYTHONPATH=src, PYTHONHASHSEED="0", RSP_EXPECT_COMPILED="1")
    return cachegrind_instructions([__file__, "--workload", str(n), "--filters", filters, "--heads", heads], env)


def per_request(src: str, filters: str, heads: str) -> float:
    return (instructions(src, MANY, filters, heads) - instructions(src, FEW, filters, heads)) / (MANY - FEW)


def compiled(src: str) -> bool:
    return any(Path(src, "rsp", "proxy").glob("exchange*.so"))


def measure(base: str, here: str) -> None:
    for src in (base, here):
        if not compiled(src):
            raise SystemExit(f"{src} has no compiled modules: run scripts/build-native in its checkout first")
    print(f"CPU instructions per request (valgrind cachegrind, ({MANY} - {FEW} requests) / {MANY - FEW})")
    print("| heads | before | no filters | empty access filter | no filters / before | empty access / no filters |")
    print("|---|--:|--:|--:|--:|--:|")
    for heads in HEADS:
        before = per_request(base, "none", heads)
        none = per_request(here, "none", heads)
        empty = per_request(here, "empty-access", heads)
        print(f"| {heads} | {before:,.0f} | {none:,.0f} | {empty:,.0f} | {none / before:.3f}x | {empty / none:.3f}x |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", help="src/ of the checkout before the pipeline (compiled)")
    parser.add_argument("--workload", type=int, help="run N requests (what valgrind runs)")
    parser.add_argument("--filters", choices=FILTERS, default="none")
    parser.add_argument("--heads", choices=HEADS, default="identical")
    args = parser.parse_args()
    if args.workload is not None:
        workload(args.workload, args.filters, args.heads)
        return
    if not args.base:
        parser.error("--base is required to measure")
    measure(args.base, str(Path(__file__).resolve().parent.parent / "src"))


if __name__ == "__main__":
    main()
