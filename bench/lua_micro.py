"""The Lua engine's own cost per handler call, without sockets: LuaFilter.access on a plain ExchangeView for
the bench/lua handler files (what bench/run_lua.py adds to a request, minus the pipeline's own cost).

    .venv/bin/python bench/lua_micro.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from rsp.config.lua_loader import load_config  # noqa: E402
from rsp.lua_wiring import lua_filters, prepare_shared  # noqa: E402
from support.lua_exchange import FakeExchange  # noqa: E402

HANDLERS = ("empty.lua", "routing.lua", "incr.lua")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args(argv)
    print("| handler | us per call (best of 3) |\n|---|---|")
    with tempfile.TemporaryDirectory(prefix="rsp-lua-micro-") as tmp:
        for handler in HANDLERS:
            path = Path(tmp) / f"{handler}.rsp.lua"
            path.write_text('backends = { "127.0.0.1:9" }\nlisten = { { port = 1, mode = "http" } }\n'
                            f'lua = {{ access = "{HERE / "lua" / handler}", shared = {{ hits = "1m" }}, '
                            f'shared_dir = "{tmp}/shared" }}\n')
            config = load_config(str(path))
            prepare_shared(config, fresh=True)
            loop = asyncio.new_event_loop()
            filters_for = lua_filters(config, loop)
            assert filters_for is not None
            flt = filters_for(config.listeners[0])[0]
            ex = FakeExchange(b"/a/b?x=1", headers=[(b"Cookie", b"a=1")])
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                for _ in range(args.calls):
                    ex.ctx.clear()
                    flt.access(ex)
                best = min(best, (time.perf_counter() - start) / args.calls * 1e6)
            loop.close()
            print(f"| {handler} | {best:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
