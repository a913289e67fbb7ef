"""The master forgets the workers a reload retired (found by the chaos soak: its resident memory grew with
every reload), and names the workers a reload is starting. Each retired worker's supervision record held its
starter, and with it the whole old generation (config, pools, backend records), for as long as the master
lived. In-process master, real worker processes on loopback."""

from __future__ import annotations

import asyncio
import gc
import io
import time
import weakref
from pathlib import Path

from rsp.config.lua_loader import load_config
from rsp.master.master import Master
from support.rsp_process import free_port

RELOADS = 3
SETTLE_TIMEOUT = 30.0


def test_a_reload_leaves_no_record_of_the_retired_workers_and_frees_the_old_generation(tmp_path: Path) -> None:
    path = tmp_path / "rsp.lua"
    path.write_text(f'listen = {{ {{ address = "127.0.0.1", port = {free_port()} }} }}\n'
                    'backends = { "127.0.0.1:9" }\nworkers = 1\n')
    loop = asyncio.new_event_loop()
    master = Master(load_config(str(path)), loop, out=io.StringIO())

    async def scenario() -> tuple[list[str], weakref.ref[object]]:
        await master.start()
        try:
            assert master.generation is not None
            first = weakref.ref(master.generation)
            reloading = asyncio.ensure_future(master.reload())
            # While the reload's workers start, `show workers` calls them what they are (found by the chaos
            # soak: they read "finishing (old generation)").
            deadline = time.monotonic() + SETTLE_TIMEOUT
            roles: dict[str, str] = {}
            while "worker 2.1" not in roles and not reloading.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
                roles = {w["name"]: w["role"] for w in master.workers_info()}
            assert roles == {"worker 1.1": "serving", "worker 2.1": "starting (new generation)"}
            assert (await reloading).get("ok")
            for _ in range(RELOADS - 1):
                assert (await master.reload()).get("ok")
            # The old workers have nothing to finish: they exit soon after each reload (an event, bounded).
            deadline = time.monotonic() + SETTLE_TIMEOUT
            while len(master.supervisor.info()) > 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return [info.name for info in master.supervisor.info()], first
        finally:
            master.request_shutdown()
            await master.wait_stopped()

    try:
        names, first = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert names == [f"worker {RELOADS + 1}.1"]
    gc.collect()
    assert first() is None, "the first generation is still referenced"
