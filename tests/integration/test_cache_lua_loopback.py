"""Lua steering the response cache on a running rsp (two workers, a counting backend), as OpenResty users do
with proxy_cache_key, proxy_cache_bypass, proxy_no_cache and proxy_cache_valid: ngx.var.rsp_cache_key,
rsp_cache_bypass, rsp_cache_no_store and rsp_cache_ttl set in access."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import get

Run = Callable[..., Any]
Start = Callable[..., Any]
Port = Callable[..., int]

LUA = """{
  access = function()
    ngx.var.rsp_cache_key = ngx.var.host .. ngx.var.uri              -- the query string is not in the key
    if ngx.var.http_x_refresh then ngx.var.rsp_cache_bypass = 1 end  -- fetched, and stored for the others
    if ngx.var.cookie_session then ngx.var.rsp_cache_no_store = 1 end
    if ngx.var.uri == "/plain" then ngx.var.rsp_cache_ttl = 300 end   -- the backend says nothing of freshness
  end,
}"""


def test_lua_sets_the_key_bypass_no_store_and_ttl(run_rsp: Run, start_backend: Start, free_port: Port,
                                                  tmp_path: Path) -> None:
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def handler(req: ReceivedRequest) -> Reply:
        path = req.target.split("?")[0]
        with lock:
            counts[path] = counts.get(path, 0) + 1
            n = counts[path]
        headers = [] if path == "/plain" else [("Cache-Control", "max-age=300")]
        return Reply(headers=headers, body=f"{path} #{n}\n".encode())

    backend = start_backend(HttpBackend, handler=handler)
    port = free_port()
    run_rsp(f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", cache = "pages" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend.port}" }}\n'
            'http = { access_log = "off" }\n'
            f'caches = {{ pages = {{ size = "16m", path = "{tmp_path / "pages.lmdb"}" }} }}\n'
            f'workers = 2\nlua = {LUA}\n')

    def fetch(target: str, headers: list[tuple[str, str]] | None = None) -> tuple[str | None, bytes]:
        response = get(port, target, headers=headers or [])
        assert response.status == 200, (target, response.status, response.body)
        return response.header("X-Cache"), response.body

    # The key: one entry whatever the query string.
    assert fetch("/k?utm=1") == ("MISS", b"/k #1\n")
    assert [fetch(f"/k?utm={i}") for i in range(2, 8)] == [("HIT", b"/k #1\n")] * 6
    # Bypass: to the backend without a lookup; its answer replaces the stored one for everybody.
    assert fetch("/k", [("X-Refresh", "1")]) == ("BYPASS", b"/k #2\n")
    assert fetch("/k?utm=9") == ("HIT", b"/k #2\n")
    # No store: a logged-in user's page is never stored (but a stored one still answers).
    assert fetch("/n", [("Cookie", "session=abc")]) == ("MISS", b"/n #1\n")
    assert fetch("/n", [("Cookie", "session=abc")]) == ("MISS", b"/n #2\n")
    # TTL: a response with no freshness of its own is stored for the handler's 300 s.
    assert fetch("/plain") == ("MISS", b"/plain #1\n")
    assert [fetch("/plain")[0] for _ in range(5)] == ["HIT"] * 5
    assert counts == {"/k": 2, "/n": 2, "/plain": 1}
