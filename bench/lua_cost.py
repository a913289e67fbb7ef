"""What Lua handlers cost per request, in CPU instructions counted by valgrind (deterministic: the figure holds
on a busy machine where wall-clock timings do not). bench/pipeline_cost.py's workload (a client connection and
a pooled backend connection on rsp's socket streams over sockets whose send only counts), with these chains:

    none          no filter (the fast path)
    py-empty      one Python filter whose access() returns None (the pipeline's own cost)
    lua-empty     bench/lua/empty.lua as the access handler
    lua-routing   bench/lua/routing.lua (reads five variables, sets a request header and ngx.ctx)
    lua-incr      bench/lua/incr.lua (ngx.shared incr in every request, LMDB)

Each runs under `valgrind --tool=cachegrind` for FEW and MANY requests; (I(MANY) - I(FEW)) / (MANY - FEW) is
one request. Targets (issue 19): lua-empty within 1.25x none, lua-routing 1.5x, lua-incr 1.6x.

    .venv/bin/python bench/lua_cost.py
    PYTHONPATH=src .venv/bin/python bench/lua_cost.py --workload 100 --chain lua-routing    (one run by hand)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from pipeline_cost import REQUEST, RESPONSE, cachegrind_instructions, wire_session

HERE = Path(__file__).resolve().parent
FEW = 300
MANY = 1300
CHAINS = ("none", "py-empty", "lua-empty", "lua-routing", "lua-incr")
HANDLER = {"lua-empty": "empty.lua", "lua-routing": "routing.lua", "lua-incr": "incr.lua"}


def chain_for(name: str, loop: asyncio.AbstractEventLoop, tmp: str) -> dict[str, Any]:
    from rsp.config.lua_loader import load_config
    from rsp.lua_wiring import lua_filters, prepare_shared
    from rsp.pipeline.phases import Chain, ExchangeView, Filter, Verdict

    if name == "none":
        return {}
    if name == "py-empty":
        class EmptyAccess(Filter):
            def access(self, exchange: ExchangeView) -> Verdict:
                return None
        return {"chain": Chain([EmptyAccess()])}
    path = Path(tmp) / "lua.rsp.lua"
    path.write_text('listen = {{ port = 8080, mode = "http" }}\nbackends = { "127.0.0.1:9" }\n'
                    f'lua = {{ access = "{HERE / "lua" / HANDLER[name]}", shared = {{ hits = "1m" }}, '
                    f'shared_dir = "{tmp}/shared" }}\n')
    config = load_config(str(path))
    prepare_shared(config, fresh=True)
    filters_for = lua_filters(config, loop)
    assert filters_for is not None
    return {"chain": Chain(filters_for(config.listeners[0]))}


def workload(n: int, chain: str) -> None:
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
    with tempfile.TemporaryDirectory() as tmp:
        extra = chain_for(chain, loop, tmp)
        proxy = HttpProxy(loop, cfg, pools, "default", AccessLog("off"), **extra)
        client, client_stream, client_sock, upstream, upstream_sock = wire_session(loop, proxy)
        for _ in range(n):
            client.data_received(REQUEST)
            upstream.data_received(RESPONSE)
        assert not client_stream.is_closing() and client_sock.written and upstream_sock.written
        if chain == "lua-incr":  # the handler ran for every request
            store = extra["chain"].filters[0].engine.shared
            assert store.get("hits", b"requests")[0] == n, store.get("hits", b"requests")


def instructions(n: int, chain: str) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")
    return cachegrind_instructions([__file__, "--workload", str(n), "--chain", chain], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", type=int, help="run N requests (what valgrind runs)")
    parser.add_argument("--chain", choices=CHAINS, default="none")
    args = parser.parse_args()
    if args.workload is not None:
        workload(args.workload, args.chain)
        return
    print(f"CPU instructions per request (valgrind cachegrind, ({MANY} - {FEW} requests) / {MANY - FEW})")
    print("| chain | instructions/request | x none |\n|---|--:|--:|")
    base = 0.0
    for chain in CHAINS:
        per = (instructions(MANY, chain) - instructions(FEW, chain)) / (MANY - FEW)
        base = base or per
        print(f"| {chain} | {per:,.0f} | {per / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
