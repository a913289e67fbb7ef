"""rsp with one Python filter that does nothing in access, for bench/run_lua.py: what the pipeline's filtered
path costs by itself, so that the Lua engine's share of an empty access handler can be told apart.

    python bench/rsp_noop_filter.py CONFIG.lua     (as `python -m rsp CONFIG.lua`, workers = 1 only)
"""

from __future__ import annotations

import asyncio
import sys

from rsp.config.lua_loader import load_config
from rsp.config.model import Listener
from rsp.pipeline.phases import ExchangeView, Filter, Verdict
from rsp.server import Server
from rsp.transport.event_loop import loop_from_environment
from rsp.transport.listener import bind_listener


class NoopAccess(Filter):
    name = "noop"

    def access(self, exchange: ExchangeView) -> Verdict:
        return None


def main() -> int:
    config = load_config(sys.argv[1])
    loop, _ = loop_from_environment()
    asyncio.set_event_loop(loop)
    noop = NoopAccess()

    def filters_for(listener: Listener) -> list[Filter]:
        return [noop]

    # The worker's Server alone (the filter is a Python object, which the master cannot hand a worker): it
    # binds its listeners itself, as the master would for it.
    sockets = [bind_listener(listener.host, listener.port) for listener in config.listeners]
    server = Server(config, loop, sockets, filters_for=filters_for)
    loop.run_until_complete(server.start())
    try:
        loop.run_until_complete(server.wait_stopped())
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
