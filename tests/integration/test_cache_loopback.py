"""The response cache on a running rsp with two workers, a counting backend and real clients: a response one
process fetched is a hit in the others (many connections, then new worker processes after a kill and after a
reload), revalidation with a 304 reaches the backend as a conditional request, and the size bound holds for
the machine while both workers write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from master.master_support import admin, serving_pids
from support.cache_configs import CONNECTIONS, config
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import get
from support.waiting import eventually

Run = Callable[..., Any]
Start = Callable[..., Any]
Port = Callable[..., int]
# Enough connections that with two workers accepting from one queue both serve some (and a hit in either is
# what the backend's count shows).
BIG = 100 * 1024


def cached_handler(req: ReceivedRequest) -> Reply:
    """max-age=300 pages with an ETag; /big/* are 100 KiB; a conditional request for the ETag gets 304."""
    if req.header("If-None-Match") == '"v1"':
        return Reply(status=304, reason="Not Modified", headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=300")],
                     content_length=False)
    if req.target.startswith("/short"):
        return Reply(headers=[("Cache-Control", "max-age=1"), ("ETag", '"v1"')], body=b"short-lived\n")
    body = b"b" * BIG if req.target.startswith("/big/") else f"page {req.target}\n".encode()
    return Reply(headers=[("Content-Type", "text/plain"), ("Cache-Control", "max-age=300"), ("ETag", '"v1"')],
                 body=body)


def hits(backend: HttpBackend, target: str) -> int:
    return sum(1 for r in backend.requests if r.target == target)


def test_a_response_fetched_by_one_worker_is_a_hit_in_every_worker(run_rsp: Run, start_backend: Start,
                                                                   free_port: Port, tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, handler=cached_handler)
    sock = str(tmp_path / "admin.sock")
    port = free_port()
    rsp = run_rsp(config(port, backend.port, tmp_path / "pages.lmdb", sock))
    first = get(port, "/page")
    assert (first.status, first.header("X-Cache"), first.body) == (200, "MISS", b"page /page\n")
    labels = [get(port, "/page").header("X-Cache") for _ in range(CONNECTIONS)]
    assert labels == ["HIT"] * CONNECTIONS
    assert hits(backend, "/page") == 1
    later = get(port, "/page")
    assert later.header("Age") is not None and later.header("ETag") == '"v1"'

    # New processes: both workers killed, the supervisor starts two others; they find the entry.
    old = serving_pids(sock)
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    eventually(lambda: len(set(serving_pids(sock)) - set(old)) == 2, timeout=30)
    assert get(port, "/page").header("X-Cache") == "HIT"

    # A reload (a changed config: new workers) keeps the entries too.
    Path(rsp.config_path).write_text(config(port, backend.port, tmp_path / "pages.lmdb", sock,
                                            extra="log_level = \"info\"\n"))
    reply = admin(sock, "reload")
    assert reply.get("ok"), reply
    assert get(port, "/page").header("X-Cache") == "HIT"
    assert hits(backend, "/page") == 1


def test_revalidation_reaches_the_backend_as_a_conditional_request(run_rsp: Run, start_backend: Start,
                                                                    free_port: Port, tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, handler=cached_handler)
    port = free_port()
    run_rsp(config(port, backend.port, tmp_path / "pages.lmdb", str(tmp_path / "admin.sock")))
    assert get(port, "/short").header("X-Cache") == "MISS"
    eventually(lambda: get(port, "/short", headers=[("Cache-Control", "max-age=0")]).header("X-Cache")
               == "REVALIDATED", timeout=10)
    conditional = [r for r in backend.requests if r.target == "/short" and r.header("If-None-Match") == '"v1"']
    assert conditional, "the backend saw no conditional request"
    again = get(port, "/short", headers=[("Cache-Control", "max-age=0")])
    assert (again.status, again.body) == (200, b"short-lived\n")
    mine = get(port, "/short", headers=[("If-None-Match", '"v1"')])
    assert (mine.status, mine.body) == (304, b"")


def test_the_size_bound_holds_with_both_workers_writing(run_rsp: Run, start_backend: Start, free_port: Port,
                                                        tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, handler=cached_handler)
    port = free_port()
    store = tmp_path / "small.lmdb"
    run_rsp(config(port, backend.port, store, str(tmp_path / "admin.sock"), size="2m"))
    errors: list[str] = []

    def client(offset: int) -> None:
        for i in range(offset, 60, 2):
            response = get(port, f"/big/{i}")
            if response.status != 200 or len(response.body) != BIG:
                errors.append(f"/big/{i}: {response.status} {len(response.body)}")

    threads = [threading.Thread(target=client, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert os.path.getsize(store) <= 2 * 1024 * 1024
    # The most recent objects are there; the first ones were evicted to make room. A put that meets LMDB's
    # MapFullError twice is dropped (CacheStore.put: a cache may skip a store), which in a 2m map can happen
    # while the other worker's read transactions hold the pages eviction just freed: the likely reason CI once
    # found /big/59 missing. So one of the newest may be a miss.
    newest = [get(port, f"/big/{i}").header("X-Cache") for i in (59, 58, 57, 56)]
    assert newest.count("HIT") >= 3, newest
    assert get(port, "/big/0").header("X-Cache") == "MISS"
    assert hits(backend, "/big/0") == 2


def test_a_stale_entry_stands_in_while_the_backend_is_down(run_rsp: Run, start_backend: Start, free_port: Port,
                                                           tmp_path: Path) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        return Reply(headers=[("Cache-Control", "max-age=1, stale-if-error=300")], body=b"last good\n")

    backend = start_backend(HttpBackend, handler=handler)
    port = free_port()
    run_rsp(config(port, backend.port, tmp_path / "pages.lmdb", str(tmp_path / "admin.sock")))
    assert get(port, "/grace").header("X-Cache") == "MISS"
    backend.stop()
    time.sleep(1.5)  # past max-age=1: the entry is stale, and the backend refuses connections
    response = get(port, "/grace")
    assert (response.status, response.body, response.header("X-Cache")) == (200, b"last good\n", "STALE")
    assert get(port, "/never-stored").status in (502, 503)


def test_purge_is_seen_by_every_worker(run_rsp: Run, start_backend: Start, free_port: Port, tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, handler=cached_handler)
    port = free_port()
    text = config(port, backend.port, tmp_path / "pages.lmdb", str(tmp_path / "admin.sock"))
    run_rsp(text.replace(f'path = "{tmp_path / "pages.lmdb"}"', f'path = "{tmp_path / "pages.lmdb"}", '
                                                                'purge = { "127.0.0.1" }'))
    get(port, "/p")
    assert [get(port, "/p").header("X-Cache") for _ in range(10)] == ["HIT"] * 10
    purged = get(port, "/p", method="PURGE")
    assert (purged.status, purged.body) == (200, b"purged 1\n")
    labels = [get(port, "/p").header("X-Cache") for _ in range(10)]
    assert labels == ["MISS"] + ["HIT"] * 9
    assert hits(backend, "/p") == 2


def test_concurrent_misses_make_one_backend_request_across_workers(run_rsp: Run, start_backend: Start,
                                                                   free_port: Port, tmp_path: Path) -> None:
    def slow(req: ReceivedRequest) -> Reply:
        return Reply(headers=[("Cache-Control", "max-age=300")], body=b"slow page\n", delay=0.5)

    backend = start_backend(HttpBackend, handler=slow)
    port = free_port()
    run_rsp(config(port, backend.port, tmp_path / "pages.lmdb", str(tmp_path / "admin.sock")))
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def client() -> None:
        response = get(port, "/slow")
        with lock:
            results.append((response.status, response.body))

    threads = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [(200, b"slow page\n")] * CONNECTIONS
    assert hits(backend, "/slow") == 1


def test_rsp_cache_ban_applies_to_the_running_workers(run_rsp: Run, start_backend: Start, free_port: Port,
                                                      tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, handler=cached_handler)
    port = free_port()
    rsp = run_rsp(config(port, backend.port, tmp_path / "pages.lmdb", str(tmp_path / "admin.sock")))
    for target in ("/static/a", "/static/b", "/page"):
        get(port, target)
    done = subprocess.run([sys.executable, "-m", "rsp", "cache", "-c", rsp.config_path, "ban", "--prefix",
                           "http://example.com/static/"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"pages": {"banned": 2}}
    assert [get(port, t).header("X-Cache") for t in ("/static/a", "/static/b", "/page")] == ["MISS", "MISS", "HIT"]


def test_a_route_cache_applies_to_its_route_only(run_rsp: Run, start_backend: Start, free_port: Port,
                                                 tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, handler=cached_handler)
    port = free_port()
    text = (f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend.port}" }}\nhttp = {{ access_log = "off" }}\n'
            f'caches = {{ assets = {{ size = "4m", path = "{tmp_path / "assets.lmdb"}" }} }}\n'
            'routes = { { path = "/static/", pool = "default", cache = "assets" }, { path = "/", pool = "default" } }\n'
            "workers = 1\n")
    run_rsp(text)
    assert [get(port, "/static/app.js").header("X-Cache") for _ in range(3)] == ["MISS", "HIT", "HIT"]
    assert [get(port, "/page").header("X-Cache") for _ in range(2)] == [None, None]
    assert hits(backend, "/static/app.js") == 1 and hits(backend, "/page") == 2
    head = get(port, "/static/app.js", method="HEAD")
    assert (head.status, head.body, head.header("X-Cache"), head.header("Content-Length")) == (
        200, b"", "HIT", str(len(b"page /static/app.js\n")))
