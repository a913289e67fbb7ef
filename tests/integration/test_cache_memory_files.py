"""A memory-backed cache's files (in /dev/shm) last as long as the rsp that made them: shared by its workers and
kept across a reload, removed when it stops; a cache with `path` is the operator's file and stays."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from master.master_support import admin
from rsp.cache.memory_files import default_path
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import get

Run = Callable[..., Any]
Start = Callable[..., Any]
Port = Callable[..., int]


def cacheable(req: ReceivedRequest) -> Reply:
    return Reply(headers=[("Cache-Control", "max-age=300")], body=f"page {req.target}\n".encode())


def two_caches(port: int, backend: int, disk: Path, sock: str, extra: str = "") -> str:
    return (f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", cache = "mem" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend}" }}\n'
            'http = { access_log = "off" }\n'
            f'caches = {{ mem = {{ size = "4m" }}, disk = {{ size = "4m", path = "{disk}" }} }}\n'
            'routes = { { path = "/disk/", pool = "default", cache = "disk" }, { path = "/", pool = "default" } }\n'
            f'workers = 2\nadmin_socket = "{sock}"\n{extra}')


def test_a_memory_backed_store_outlives_a_reload_and_is_removed_when_rsp_stops(
        run_rsp: Run, start_backend: Start, free_port: Port, tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, handler=cacheable)
    port, sock, disk = free_port(), str(tmp_path / "admin.sock"), tmp_path / "disk.lmdb"
    rsp = run_rsp(two_caches(port, backend.port, disk, sock))
    memory = default_path(rsp.config_path, "mem")
    assert get(port, "/page").header("X-Cache") == "MISS"
    assert get(port, "/disk/page").header("X-Cache") == "MISS"
    assert os.path.exists(memory) and os.path.exists(memory + "-lock") and disk.exists()

    Path(rsp.config_path).write_text(two_caches(port, backend.port, disk, sock, extra='log_level = "info"\n'))
    assert admin(sock, "reload").get("ok")
    assert get(port, "/page").header("X-Cache") == "HIT", "a reload keeps the memory-backed entries"

    assert rsp.stop() == 0
    assert not os.path.exists(memory) and not os.path.exists(memory + "-lock")
    assert not os.path.exists(memory + "-spool")
    assert disk.exists(), "a cache with `path` is the operator's file: kept"
