"""The cache through the runtime API and in /metrics, on a running rsp with two workers and a backend whose
every response is a new version: `cache purge` and `cache ban` over the real admin socket reach both workers
(after them, neither serves the old version), `cache stats` gives the machine's store and each worker's
counters, and /metrics carries the same figures after real traffic."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from master.master_support import admin
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import get, lua
from support.stats_client import metrics, value
from support.waiting import eventually

Run = Callable[..., Any]
Start = Callable[..., Any]
Port = Callable[..., int]
# Requests sent at most while waiting for both workers to have served one (they accept from one queue),
# CONCURRENCY connections at a time.
MAX_TRIES = 400
CONCURRENCY = 16


class Versions:
    """A backend handler whose every response carries the next version number, cacheable for 5 minutes."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.fetched: list[str] = []

    def __call__(self, req: ReceivedRequest) -> Reply:
        self.fetched.append(req.target)
        return Reply(headers=[("Cache-Control", "max-age=300")], body=f"v{next(self.counter)} {req.target}\n".encode())


def start(run_rsp: Run, start_backend: Start, free_port: Port, tmp_path: Path,
          stats_port: int | None = None, workers: int = 2) -> tuple[int, str, Versions]:
    versions = Versions()
    backend = start_backend(HttpBackend, handler=versions)
    port, sock = free_port(), str(tmp_path / "admin.sock")
    stats = f"stats = {lua({'listen': f'127.0.0.1:{stats_port}'})}\n" if stats_port else ""
    run_rsp(f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", cache = "pages" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend.port}" }}\n'
            'http = { access_log = "off" }\n'
            f'caches = {{ pages = {{ size = "16m", path = "{tmp_path / "pages.lmdb"}" }} }}\n'
            f'workers = {workers}\nadmin_socket = "{sock}"\n{stats}')
    return port, sock, versions


def worker_hits(sock: str) -> dict[int, int]:
    """pid -> hits, from `cache stats`."""
    return {w["pid"]: w["hits"] for w in admin(sock, "cache stats")["pages"]["workers"]}


def both_workers_serve(port: int, sock: str, target: str) -> set[bytes]:
    """Requests for `target` (each on a new connection, CONCURRENCY at a time) until both workers have
    answered one from the cache; every body they gave. Concurrent, because the workers wait on the listener
    with EPOLLEXCLUSIVE: a new connection wakes one idle worker, so one after another they would all go to
    the same one (as with nginx); a connection that comes while that one is busy goes to the other."""
    before = worker_hits(sock)
    assert len(before) == 2, before
    bodies: set[bytes] = set()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for _ in range(MAX_TRIES // CONCURRENCY):
            for response in pool.map(lambda _: get(port, target), range(CONCURRENCY)):
                assert response.status == 200
                bodies.add(response.body)
            now = worker_hits(sock)
            if all(now[pid] > before[pid] for pid in before):
                return bodies
    raise AssertionError(f"both workers did not serve {target} from the cache: {before} -> {worker_hits(sock)}")


def test_purge_over_the_admin_socket_is_a_miss_in_both_workers(run_rsp: Run, start_backend: Start,
                                                               free_port: Port, tmp_path: Path) -> None:
    port, sock, versions = start(run_rsp, start_backend, free_port, tmp_path)
    assert get(port, "/p").header("X-Cache") == "MISS"
    assert both_workers_serve(port, sock, "/p") == {b"v1 /p\n"}

    purged = admin(sock, "cache purge http://example.com/p http://example.com/never-stored")
    assert purged == {"pages": {"purged": 1}}
    first = get(port, "/p")
    assert (first.header("X-Cache"), first.body) == ("MISS", b"v2 /p\n")
    # Neither worker still has v1: both answer the new version from the store, and the backend saw /p twice.
    assert both_workers_serve(port, sock, "/p") == {b"v2 /p\n"}
    assert versions.fetched.count("/p") == 2
    assert admin(sock, "cache purge http://example.com/p") == {"pages": {"purged": 1}}
    assert admin(sock, "cache purge http://example.com/p") == {"pages": {"purged": 0}}


def test_the_same_commands_with_one_worker(run_rsp: Run, start_backend: Start, free_port: Port,
                                           tmp_path: Path) -> None:
    port, sock, _ = start(run_rsp, start_backend, free_port, tmp_path, workers=1)
    assert [get(port, "/one").body for _ in range(3)] == [b"v1 /one\n"] * 3
    stats = admin(sock, "cache stats")["pages"]
    assert (stats["entries"], stats["counters"]["hits"], len(stats["workers"])) == (1, 2, 1)
    assert admin(sock, "cache purge http://example.com/one") == {"pages": {"purged": 1}}
    assert get(port, "/one").body == b"v2 /one\n"


def test_ban_by_prefix_and_regex_over_the_admin_socket(run_rsp: Run, start_backend: Start, free_port: Port,
                                                       tmp_path: Path) -> None:
    port, sock, versions = start(run_rsp, start_backend, free_port, tmp_path)
    targets = ("/static/a.css", "/static/b.js", "/page", "/other.css")
    for target in targets:
        assert get(port, target).header("X-Cache") == "MISS"
    assert admin(sock, "cache stats")["pages"]["entries"] == 4

    assert admin(sock, "cache ban prefix http://example.com/static/") == {"pages": {"banned": 2}}
    assert [get(port, t).header("X-Cache") for t in targets] == ["MISS", "MISS", "HIT", "HIT"]
    # The rest of the line is the regex, spaces included (its second branch matches nothing).
    assert admin(sock, r"cache ban regex \.css$|/no such page") == {"pages": {"banned": 2}}
    assert [get(port, t).header("X-Cache") for t in targets] == ["MISS", "HIT", "HIT", "MISS"]
    assert versions.fetched.count("/static/a.css") == 3 and versions.fetched.count("/page") == 1

    bad = admin(sock, "cache ban regex (")
    assert "bad regex" in bad["error"]
    assert "not an absolute" in admin(sock, "cache purge /relative")["error"]
    assert "unknown command" in admin(sock, "cache flush")["error"]
    assert "cache purge URL..." in admin(sock, "help")["commands"]


def test_cache_stats_sums_the_workers_and_reads_the_machine_store(run_rsp: Run, start_backend: Start,
                                                                  free_port: Port, tmp_path: Path) -> None:
    port, sock, _ = start(run_rsp, start_backend, free_port, tmp_path)
    for i in range(3):
        assert get(port, f"/s/{i}").header("X-Cache") == "MISS"
    both_workers_serve(port, sock, "/s/0")
    stats = admin(sock, "cache stats")["pages"]
    assert stats["entries"] == 3 and stats["bytes"] > 0 and stats["budget"] > stats["bytes"]
    assert stats["path"] == str(tmp_path / "pages.lmdb")
    counters, workers = stats["counters"], stats["workers"]
    assert len(workers) == 2 and all(w["hits"] > 0 for w in workers)
    assert counters["misses"] == 3 and counters["stored"] == 3
    assert counters["hits"] == sum(w["hits"] for w in workers)


def test_metrics_carry_the_cache_figures_after_real_traffic(run_rsp: Run, start_backend: Start, free_port: Port,
                                                            tmp_path: Path) -> None:
    stats_port = free_port()
    port, sock, _ = start(run_rsp, start_backend, free_port, tmp_path, stats_port=stats_port)
    labels = {"cache": "pages"}
    for i in range(5):
        assert get(port, f"/m/{i}").header("X-Cache") == "MISS"
    for _ in range(7):
        assert get(port, "/m/0").header("X-Cache") == "HIT"
    assert get(port, "/m/0", headers=[("If-Match", '"x"')]).header("X-Cache") == "BYPASS"
    stale = get(port, "/m/1", headers=[("Cache-Control", "max-stale")])
    assert stale.header("X-Cache") == "HIT"  # fresh: max-stale accepts stale, it does not ask for it
    admin(sock, "cache purge http://example.com/m/4")

    def figures_settled() -> bool:
        table = metrics(stats_port)
        return value(table, "rsp_cache_stores_total", **labels) == 5 and value(table, "rsp_cache_hits_total",
                                                                                  **labels) == 8
    eventually(figures_settled, timeout=10)
    table = metrics(stats_port)
    assert value(table, "rsp_cache_misses_total", **labels) == 5
    assert value(table, "rsp_cache_bypass_total", **labels) == 1
    assert value(table, "rsp_cache_stale_total", **labels) == 0
    assert value(table, "rsp_cache_coalesced_total", **labels) == 0
    assert value(table, "rsp_cache_evictions_total", **labels) == 0
    # The store's figures are the machine's, not a sum over the two workers.
    assert value(table, "rsp_cache_objects", **labels) == 4
    store = admin(sock, "cache stats")["pages"]
    assert value(table, "rsp_cache_stored_bytes", **labels) == store["bytes"]
    assert value(table, "rsp_cache_budget_bytes", **labels) == store["budget"]
