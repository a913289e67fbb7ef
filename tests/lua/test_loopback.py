"""Lua handlers in a running rsp with two workers, on loopback: a counter in ngx.shared sums exactly across
both workers; a runaway loop, a memory bomb and a run-time error answer 500 with file and line logged, and
the workers survive; a syntax error fails `rsp --check` with its line; the Redis balancer picks the backend."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.http_backends import HttpBackend
from support.redis_server import RedisServer
from support.rsp_process import RspProcess, run_cli

VENDOR = Path(__file__).parent / "vendor" / "lua-resty-redis" / "lib"
CLIENTS = 4
REQUESTS_EACH = 40
CLIENT_TIMEOUT = 10.0


def get(port: int, path: str, host: str = "app.example") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def config(port: int, backend: int, lua: str, extra: str = "") -> str:
    return (f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend}" }}\nworkers = 2\nhttp = {{ access_log = "off" }}\n'
            f"{extra}lua = {lua}\n")


def test_shared_counter_sums_exactly_across_two_workers(run_rsp: Callable[..., RspProcess], start_backend: Any,
                                                        free_port: Callable[[], int], tmp_path: Path) -> None:
    backend = start_backend(HttpBackend)
    port = free_port()
    run_rsp(config(port, backend.port, """{
      shared = { hits = "1m" }, shared_dir = "shared",
      access = function()
        if ngx.var.uri == "/count" then return ngx.say(ngx.shared.hits:get("n")) end
        ngx.shared.hits:incr("n", 1, 0)
      end,
      header_filter = function() ngx.header["X-Worker"] = ngx.worker.pid() end,
    }"""))
    workers: set[str] = set()
    errors: list[str] = []

    def client() -> None:
        for _ in range(REQUESTS_EACH):
            status, headers, _ = get(port, "/hit")
            if status != 200:
                errors.append(str(status))
            workers.add(headers.get("x-worker", ""))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(workers) == 2, workers  # both workers counted
    status, _, body = get(port, "/count")
    assert status == 200 and body == b"%d\n" % (CLIENTS * REQUESTS_EACH)


def test_failures_answer_500_and_the_workers_survive(run_rsp: Callable[..., RspProcess], start_backend: Any,
                                                     free_port: Callable[[], int], tmp_path: Path) -> None:
    backend = start_backend(HttpBackend)
    port = free_port()
    (tmp_path / "bad.lua").write_text('local uri = ngx.var.uri\nif uri == "/loop" then\n  while true do end\n'
                                      'elseif uri == "/bomb" then\n  local t = {}\n'
                                      '  for i = 1, 1e12 do t[i] = string.rep("x", 1e6) .. i end\n'
                                      'elseif uri == "/error" then\n  local cfg = nil\n  return cfg.missing\nend\n')
    rsp = run_rsp(config(port, backend.port, '{ access = "bad.lua" }'))
    for path, message in (("/loop", r"bad\.lua:3: handler exceeded its instruction budget"),
                          ("/bomb", r"bad\.lua:\d+: not enough memory"),
                          ("/error", r"bad\.lua:9: attempt to index local 'cfg' \(a nil value\)")):
        status, _, _ = get(port, path)
        assert status == 500, path
        assert rsp.wait_for_stderr(message, 10), (path, rsp.stderr_text)
        assert get(port, "/ok")[0] == 200  # still serving
    assert "exited" not in rsp.stderr_text  # no worker died


def test_check_names_the_line_of_a_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "handler.lua").write_text("local a = 1\nlocal b = = 2\n")
    path = tmp_path / "rsp.lua"
    path.write_text('listen = { { port = 18081, mode = "http" } }\nbackends = { "127.0.0.1:9" }\n'
                    'lua = { access = "handler.lua" }\n')
    result = run_cli("--check", str(path))
    assert result.returncode == 1
    assert f"{tmp_path}/handler.lua:2:" in result.stderr and "unexpected symbol near '='" in result.stderr
    path.write_text('listen = { { port = 18081, mode = "http" } }\nbackends = { "127.0.0.1:9" }\n'
                    'lua = {\n  access = function()\n    local x = ngx.var.uri\n    x = = 1\n  end,\n}\n')
    result = run_cli("--check", str(path))
    assert result.returncode == 1 and f"{path}:6:" in result.stderr


def test_redis_balancer(run_rsp: Callable[..., RspProcess], start_backend: Any, free_port: Callable[[], int],
                        tmp_path: Path) -> None:
    a = start_backend(HttpBackend, name="a")
    b = start_backend(HttpBackend, name="b")
    redis = RedisServer(workdir=tmp_path).start()
    try:
        redis.client().set("backend:a.example", f"127.0.0.1:{a.port}")
        redis.client().set("backend:b.example", f"127.0.0.1:{b.port}")
        port = free_port()
        run_rsp(config(port, a.port, """{
          package_path = "VENDOR/?.lua",
          balancer = function()
            local redis = require "resty.redis"
            local red = redis:new()
            red:set_timeout(1000)
            assert(red:connect("127.0.0.1", REDIS_PORT))
            local backend = red:get("backend:" .. ngx.var.host)
            red:set_keepalive(10000, 10)
            if backend == ngx.null then return ngx.exit(404) end
            local ip, p = backend:match("^(.-):(%d+)$")
            assert(require("ngx.balancer").set_current_peer(ip, tonumber(p)))
          end,
        }""".replace("VENDOR", str(VENDOR)).replace("REDIS_PORT", str(redis.port))))
        for _ in range(3):
            assert get(port, "/x", host="b.example")[2].startswith(b"b ")
            assert get(port, "/y", host="a.example")[2].startswith(b"a ")
        assert get(port, "/z", host="none.example")[0] == 404
    finally:
        redis.stop()


def test_reload_runs_the_new_code_and_keeps_shared(run_rsp: Callable[..., RspProcess], start_backend: Any,
                                                   free_port: Callable[[], int], tmp_path: Path) -> None:
    from rsp.admin.socket_server import admin_request

    backend = start_backend(HttpBackend)
    port = free_port()
    sock = str(tmp_path / "admin.sock")

    def text(version: str) -> str:
        return config(port, backend.port, """{ shared = { s = "64k" }, shared_dir = "shared", access = function()
            ngx.say("VERSION ", (ngx.shared.s:incr("n", 1, 0))) end }""".replace("VERSION", version),
                      extra=f'admin_socket = "{sock}"\n')

    rsp = run_rsp(text("old"))
    assert get(port, "/")[2] == b"old 1\n"
    Path(rsp.config_path).write_text(text("new"))
    assert '"ok"' in admin_request(sock, "reload", timeout=60)
    # new connections reach the new workers: the new handler, the same dictionary
    assert get(port, "/")[2] == b"new 2\n"


def test_body_filter_changes_the_body(run_rsp: Callable[..., RspProcess], start_backend: Any,
                                      free_port: Callable[[], int]) -> None:
    backend = start_backend(HttpBackend, name="lower")
    port = free_port()
    run_rsp(config(port, backend.port, """{
      header_filter = function() ngx.header["Content-Length"] = nil; ngx.header["X-Filtered"] = "1" end,
      body_filter = function()
        ngx.arg[1] = string.upper(ngx.arg[1])
        if ngx.arg[2] then ngx.arg[1] = ngx.arg[1] .. "<END>" end
      end,
    }"""))
    status, headers, body = get(port, "/path")
    assert status == 200 and headers["x-filtered"] == "1"
    assert body.startswith(b"LOWER GET /PATH") and body.endswith(b"<END>")


def test_access_reads_and_replaces_the_request_body(run_rsp: Callable[..., RspProcess], start_backend: Any,
                                                    free_port: Callable[[], int]) -> None:
    from support.http_backends import ReceivedRequest, Reply

    def echo(req: ReceivedRequest) -> Reply:
        length = next((v for k, v in req.headers if k.lower() == "content-length"), "-")
        return Reply(body=b"%s chunked=%d len=%s" % (req.body, req.chunked, length.encode()))

    backend = start_backend(HttpBackend, handler=echo)
    port = free_port()
    run_rsp(config(port, backend.port, """{ access = function()
        ngx.req.read_body()
        local data = ngx.req.get_body_data()
        if ngx.var.uri == "/say" then return ngx.say("got ", data) end
        if ngx.var.uri == "/drop" then return ngx.req.discard_body() end
        ngx.req.set_body_data("<" .. data .. ">")
    end }"""))

    def post(path: str, body: Any, chunked: bool = False) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
        try:
            conn.request("POST", path, body=body, headers={"Host": "app.example"}, encode_chunked=chunked)
            return conn.getresponse().read()
        finally:
            conn.close()

    assert post("/say", b"hello") == b"got hello\n"
    assert post("/set", b"hello") == b"<hello> chunked=0 len=7"
    # a chunked body, in two chunks: read whole, replaced, sent with its Content-Length
    assert post("/set", iter([b"he", b"llo"]), chunked=True) == b"<hello> chunked=0 len=7"
    assert post("/drop", b"hello") == b" chunked=0 len=0"


def test_log_reads_the_upstream_times(run_rsp: Callable[..., RspProcess], start_backend: Any,
                                      free_port: Callable[[], int]) -> None:
    import re
    backend = start_backend(HttpBackend)
    port = free_port()
    run_rsp(config(port, backend.port, """{
      shared = { t = "64k" }, shared_dir = "shared",
      access = function()
        if ngx.var.uri == "/times" then return ngx.say(ngx.shared.t:get("last")) end
      end,
      log = function()
        if ngx.var.uri ~= "/times" then
          ngx.shared.t:set("last", ngx.var.upstream_connect_time .. " " .. ngx.var.upstream_header_time .. " " ..
                                   ngx.var.upstream_response_time)
        end
      end,
    }""").replace("workers = 2", "workers = 1"))
    assert get(port, "/x")[0] == 200
    assert re.fullmatch(rb"\d+\.\d{3} \d+\.\d{3} \d+\.\d{3}\n", get(port, "/times")[2])


def test_balancer_read_timeout_applies_to_the_try(run_rsp: Callable[..., RspProcess], start_backend: Any,
                                                  free_port: Callable[[], int]) -> None:
    import time

    from support.http_backends import ReceivedRequest, Reply

    def slow(req: ReceivedRequest) -> Reply:
        return Reply(body=b"late", delay=1.5)

    backend = start_backend(HttpBackend, handler=slow)
    port = free_port()
    run_rsp(config(port, backend.port, """{ balancer = function()
        if ngx.var.arg_short then assert(require("ngx.balancer").set_timeouts(nil, nil, 0.2)) end
    end }"""))
    started = time.monotonic()
    status, _, _ = get(port, "/?short=1")
    assert status == 504 and time.monotonic() - started < 5.0  # the try's 0.2 s, not the listener's 60 s
    assert get(port, "/")[2] == b"late"  # without set_timeouts: the defaults
