"""What the route store's master spends per cached host at rest: one TTL refresh and the sweeps, in process.

    .venv/bin/python bench/routestore_refresh_cost.py [--hosts 10000] [--profile]

Every cached host is asked again once per `ttl` (5 s by default) whether or not it is requested, so at rest the
store costs hosts / ttl refreshes per second plus a sweep (`RouteCache.due_hosts`) every SWEEP_INTERVAL.
This starts one redis-server (tests/support/redis_server.py), writes HOSTS hosts, lets a RouteStore (the
master's, rsp.routestore.store) fetch them all, then times (best of REPEATS): a refresh of every host in
REFRESH_BATCH batches (`_fetch` + `_apply`, as the refresher does), and a sweep that finds nothing due.
Figures are µs per host (refresh) and ms per sweep; `--profile` prints cProfile's top of one refresh.
Only 127.0.0.1; the redis-server is stopped in `finally`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from rsp.config.model import Backend, Pool, RouteStore  # noqa: E402
from rsp.routestore.redis_link import REFRESH_BATCH  # noqa: E402
from rsp.routestore.store import RouteStore as Store  # noqa: E402
from support.redis_server import RedisServer  # noqa: E402

PREFIX = "hostnames:"
REPEATS = 3


async def refresh_all(store: Store, hosts: list[str]) -> None:
    for start in range(0, len(hosts), REFRESH_BATCH):
        batch = hosts[start: start + REFRESH_BATCH]
        store._apply(*await store._fetch(batch))


async def run(url: str, count: int, profile: bool) -> None:
    template = Pool("default", (Backend("127.0.0.1", 1),))
    store = Store(RouteStore(url=url), template, {}, asyncio.get_running_loop())
    hosts = [f"h{i}.bench" for i in range(count)]
    try:
        await refresh_all(store, hosts)  # the first lookups: every host cached
        assert len(store.cache) == count and len(store.host_pools) == count
        best = float("inf")
        for _ in range(REPEATS):
            started = time.perf_counter()
            await refresh_all(store, hosts)
            best = min(best, time.perf_counter() - started)
        sweep = float("inf")
        for _ in range(REPEATS):
            started = time.perf_counter()
            due = store.cache.due_hosts()
            sweep = min(sweep, time.perf_counter() - started)
        assert due == []
        print(f"{count} hosts: refresh {best / count * 1e6:.1f} µs per host ({best * 1e3:.0f} ms for all); "
              f"sweep {sweep * 1e3:.2f} ms; at the default ttl of {store.settings.ttl:.0f} s: "
              f"{best / store.settings.ttl * 1e3:.0f} ms/s of refreshes + "
              f"{sweep / 0.5 * 1e3:.1f} ms/s of sweeps")
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await refresh_all(store, hosts)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    finally:
        await store.link.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--profile", action="store_true")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rsp-refresh-cost-") as d:
        server = RedisServer(Path(d)).start()
        try:
            client = server.client()
            pipe = client.pipeline(transaction=False)
            for i in range(opts.hosts):
                pipe.sadd(f"{PREFIX}h{i}.bench:backends", f"127.0.0.{1 + i % 3}:80")
            pipe.execute()
            client.close()
            asyncio.run(run(server.url, opts.hosts, opts.profile))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
