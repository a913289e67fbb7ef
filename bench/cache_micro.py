"""Micro-benchmark of the response cache's own CPU cost, no sockets: what a hit, a miss and a revalidation
cost in CacheFilter and its LMDB store, per exchange.

    .venv/bin/python bench/cache_micro.py            # ~10 s
    .venv/bin/python bench/cache_micro.py --quick    # ~3 s

Prints microseconds of CPU per exchange (best of several short windows, as bench/http1_micro.py does) for:

- hit: `access` finds a fresh stored response and builds the LocalReply (1 KiB and 100 KiB bodies);
- hit 304: the same with a matching If-None-Match (no body);
- miss + store: `access` misses, `header_filter` decides the response may be stored, `body_filter` stores it
  at its end (a new URI every time: one LMDB write transaction);
- lookup only: `CacheStore.lookup` of one URI;
- the store's floor, no rsp code: a read transaction with one get (a lookup's least), one LMDB write
  transaction putting one 1 KiB value, and two of them (a stored miss needs at least its claim, written
  before the request leaves so that other workers see it, and its entry, written when the response is
  complete), through py-lmdb with the store's own flags: issue 21's miss target is measured against it.

These are the cache's share of an exchange; the rest (parse, forward, sockets) is bench/http_path_micro.py's.
The store is a file in /dev/shm, as a memory-backed cache's is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable

from rsp.cache.cache_filter import CacheFilter
from rsp.cache.memory_files import remove_store_files
from rsp.cache.store import CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import LocalReply, Request, Response

HEADERS = [(b"Content-Type", b"text/html"), (b"Cache-Control", b"max-age=3600"), (b"ETag", b'"abc"'),
           (b"Last-Modified", b"Mon, 05 Aug 2024 09:00:00 GMT"), (b"Server", b"nginx/1.22.1")]


class Exchange:
    def __init__(self, request: Request) -> None:
        self.request = request
        self.response: Response | None = None
        self.ctx: dict[str, object] = {}


def best_us(step: Callable[[], None], windows: int, per_window: int) -> float:
    best = float("inf")
    for _ in range(windows):
        start = time.process_time()
        for _ in range(per_window):
            step()
        best = min(best, (time.process_time() - start) / per_window)
    return best * 1e6


def floor_rows(directory: str, windows: int, per_window: int) -> list[tuple[str, float]]:
    """The cost of LMDB write transactions alone, with CacheStore's Environment flags (rsp.cache.store)."""
    import lmdb

    where = tempfile.mkdtemp(prefix="rsp-cache-floor-", dir=directory)
    env = lmdb.open(where, map_size=256 * 1024 * 1024, max_dbs=3, sync=False, metasync=False, readahead=False,
                    meminit=False, writemap=True)
    objects, meta = env.open_db(b"objects"), env.open_db(b"meta")
    value, counter = b"v" * 1024, [0]

    def one() -> None:
        counter[0] += 1
        txn = env.begin(objects, None, True)
        txn.put(b"%032d" % counter[0], value)
        txn.commit()

    def two() -> None:
        counter[0] += 1
        key = b"%032d" % counter[0]
        txn = env.begin(meta, None, True)
        txn.put(b"L:" + key, b"claim")
        txn.commit()
        txn = env.begin(objects, None, True)
        txn.put(key, value)
        txn.commit()

    def read() -> None:
        txn = env.begin(objects, None, False, True)
        txn.get(b"%032d" % counter[0])
        txn.abort()

    try:
        return [("floor: a read transaction, one get (the lookup's)", best_us(read, windows, per_window)),
                ("floor: one write transaction, one 1 KiB put", best_us(one, windows, per_window)),
                ("floor: two write transactions (claim, entry)", best_us(two, windows, per_window))]
    finally:
        env.close()
        shutil.rmtree(where, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    windows, per_window = (5, 300) if args.quick else (15, 600)
    directory = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    path = os.path.join(directory, f"rsp-cache-bench-{os.getpid()}.lmdb")
    store = CacheStore(path, 256 * 1024 * 1024)
    flt = CacheFilter(CacheSettings("bench"), store)
    counter = [0]

    def store_one(target: bytes, body: bytes) -> None:
        ex = Exchange(Request(b"GET", b"http", b"example.com", target, []))
        flt.access(ex)  # type: ignore[arg-type]
        ex.response = Response(200, list(HEADERS), len(body))
        flt.header_filter(ex)  # type: ignore[arg-type]
        flt.body_filter(ex, body, True)  # type: ignore[arg-type]

    def hit(target: bytes, headers: list[tuple[bytes, bytes]]) -> Callable[[], None]:
        def step() -> None:
            ex = Exchange(Request(b"GET", b"http", b"example.com", target, list(headers)))
            assert isinstance(flt.access(ex), LocalReply)  # type: ignore[arg-type]
        return step

    def miss() -> None:
        counter[0] += 1
        store_one(b"/miss/%d" % counter[0], b"m" * 1024)

    def lookup() -> None:
        assert store.lookup(b"http://example.com/1k")

    try:
        store_one(b"/1k", b"x" * 1024)
        store_one(b"/100k", b"y" * 102400)
        rows = [
            ("hit, 1 KiB", best_us(hit(b"/1k", []), windows, per_window)),
            ("hit, 100 KiB", best_us(hit(b"/100k", []), windows, per_window)),
            ("hit answered 304 (If-None-Match)", best_us(hit(b"/1k", [(b"If-None-Match", b'"abc"')]), windows,
                                                          per_window)),
            ("miss + store, 1 KiB", best_us(miss, windows, per_window // 3)),
            ("lookup only", best_us(lookup, windows, per_window)),
            *floor_rows(directory, windows, per_window),
        ]
    finally:
        store.close()
        remove_store_files(path)  # the file, its lock file and the spool directory the filter made
    print("| cache step | us of CPU per exchange |")
    print("|---|---|")
    for name, us in rows:
        print(f"| {name} | {us:.1f} |")


if __name__ == "__main__":
    main()
