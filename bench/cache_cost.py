"""What a response-cache hit costs per request through rsp's whole HTTP path, in CPU instructions counted by
valgrind (deterministic: the figure holds on a busy machine where wall-clock timings do not). The workload
of bench/lua_cost.py (a client connection and a pooled backend connection on rsp's socket streams over
sockets whose send only counts), with:

    none         no filter: every request goes to the backend (the fast path)
    cache-hit    the listener's cache: one miss stores the response, every later request is a hit
                 answered from the LMDB store (the backend never sees it)
    cache-miss   the listener's cache, every request a different target (a miss that is stored)

Each runs under `valgrind --tool=cachegrind` for FEW and MANY requests; (I(MANY) - I(FEW)) / (MANY - FEW) is
one request. The store is a file in a temporary directory under /dev/shm when there is one.

    .venv/bin/python bench/cache_cost.py
    PYTHONPATH=src:bench .venv/bin/python bench/cache_cost.py --workload 100 --chain cache-hit   (one run by hand)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from typing import Any

from pipeline_cost import CountingSocket, cachegrind_instructions, wire_session

FEW = 300
MANY = 1300
CHAINS = ("none", "cache-hit", "cache-miss")
DEFAULT_BODY_KIB = 1


def response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\nCache-Control: max-age=3600\r\n"
            b"ETag: \"6569\"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


class CallCountingSocket(CountingSocket):
    """CountingSocket that also counts its send calls (a syscall each on a real socket)."""

    calls = 0

    def send(self, data: Any, flags: int = 0) -> int:
        self.calls += 1
        return super().send(data, flags)

    def sendmsg(self, buffers: Any, *rest: Any) -> int:  # type: ignore[override]
        self.calls += 1
        return super().sendmsg(buffers, *rest)


def request(n: int, varied: bool) -> bytes:
    target = b"/1k?v=%d" % n if varied else b"/1k"
    return b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"


def workload(n: int, chain: str, body_kib: int) -> None:
    from rsp.cache.wiring import cache_filters_for
    from rsp.config.lua_loader import parse_config
    from rsp.pipeline.phases import Chain
    from rsp.proxy.access_log import AccessLog
    from rsp.proxy.http_proxy import HttpProxy
    from rsp.proxy.pools import PoolRuntime
    from rsp.transport.event_loop import RspEventLoop

    loop = RspEventLoop()
    asyncio.set_event_loop(loop)
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        cache = "" if chain == "none" else \
            f'caches = {{ pages = {{ size = "64m", path = "{tmp}/cache.lmdb" }} }}\n'
        listen = ', cache = "pages"' if cache else ""
        cfg = parse_config(f'listen = {{ {{ port = 8080, mode = "http"{listen} }} }}\n'
                           'backends = { "127.0.0.1:9" }\n'
                           'http = { access_log = "off", pool_max_requests = 1000000000 }\n' + cache, "bench.lua")
        pools = {name: PoolRuntime(spec, loop.time) for name, spec in cfg.pools.items()}
        extra: dict[str, Any] = {}
        if cache:
            extra["chain"] = Chain(cache_filters_for(cfg)(cfg.listeners[0]))
        proxy = HttpProxy(loop, cfg, pools, "default", AccessLog("off"), **extra)
        client, client_stream, client_sock, upstream, upstream_sock = wire_session(loop, proxy, CallCountingSocket)
        body = b"x" * (1024 * body_kib)
        backend_response = response(body)
        to_backend = 0
        for i in range(n):
            client.data_received(request(i, chain == "cache-miss"))
            if upstream_sock.written > to_backend:  # the request went to the backend (not a hit)
                to_backend = upstream_sock.written
                upstream.data_received(backend_response)
        assert not client_stream.is_closing() and client_sock.written > n * len(body)
        if chain == "cache-hit":  # only the first request reached the backend
            assert upstream_sock.calls == 1, upstream_sock.calls
        print(f"{chain}: {client_sock.calls / n:.2f} send calls to the client per request", file=sys.stderr)


def instructions(n: int, chain: str, body_kib: int) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")
    return cachegrind_instructions([__file__, "--workload", str(n), "--chain", chain, "--body-kib", str(body_kib)],
                                   env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", type=int, help="run N requests (what valgrind runs)")
    parser.add_argument("--chain", choices=CHAINS, default="none")
    parser.add_argument("--chains", default=",".join(CHAINS), help="which chains to measure (comma-separated)")
    parser.add_argument("--body-kib", type=int, default=DEFAULT_BODY_KIB, help="the response body's size in KiB")
    args = parser.parse_args()
    if args.workload is not None:
        workload(args.workload, args.chain, args.body_kib)
        return
    print(f"CPU instructions per request (valgrind cachegrind, ({MANY} - {FEW} requests) / {MANY - FEW}), "
          f"{args.body_kib} KiB bodies")
    print("| chain | instructions/request | x none |\n|---|--:|--:|")
    base = 0.0
    for chain in args.chains.split(","):
        per = (instructions(MANY, chain, args.body_kib) - instructions(FEW, chain, args.body_kib)) / (MANY - FEW)
        base = base or per
        print(f"| {chain} | {per:,.0f} | {per / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
