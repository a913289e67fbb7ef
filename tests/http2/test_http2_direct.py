"""An HTTP/2 stream's request reaches the exchange as the Request its pseudo-headers made (rsp.proxy.h2_stream),
with no HTTP/1 head built and parsed again on the way: filters and the access log see version 2."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rsp.pipeline.phases import ExchangeView, Filter
from support.filter_server import serve
from support.h2_client import H2Client
from support.http_backends import HttpBackend
from support.http_client import http_config
from support.rsp_process import RspProcess, free_port


class VersionLog(Filter):
    """Writes what its log phase sees of each exchange's request: version, method, authority, target."""

    name = "version-log"

    def __init__(self, path: Path) -> None:
        self.path = path

    def log(self, exchange: ExchangeView) -> None:
        request = exchange.request
        with self.path.open("a") as out:
            out.write(f"{request.version.decode()} {request.method.decode()} {request.authority.decode()} "
                      f"{request.target.decode()} {exchange.status}\n")


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    server = HttpBackend(name="b")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_an_http2_request_reaches_filters_and_the_access_log_as_version_2(backend: HttpBackend,
                                                                          tmp_path: Path) -> None:
    seen = tmp_path / "seen.log"
    access = tmp_path / "access.log"
    config = (f'listen = {{ {{ address = "127.0.0.1", port = 1, mode = "http", http2 = "prior-knowledge" }} }}\n'
              f'backends = {{ "127.0.0.1:{backend.port}" }}\n'
              f'http = {{ access_log = "combined", access_log_path = "{access}" }}\n')
    for port in serve(config, [VersionLog(seen)]):
        with H2Client(port) as client:
            get, post = client.exchange([("GET", "/a?b=c", [], b""), ("POST", "/up", [], b"x" * 3000)])
    assert get.status == 200 and post.status == 200
    assert get.headers.get("via") == "1.1 rsp"  # what rsp received from the backend (RFC 9110 §7.6.3)
    assert sorted(seen.read_text().splitlines()) == sorted(
        [f"2 GET 127.0.0.1:{port} /a?b=c 200", f"2 POST 127.0.0.1:{port} /up 200"])
    lines = access.read_text().splitlines()
    assert len(lines) == 2 and all('HTTP/2" 200' in line for line in lines), lines
    # The backend got HTTP/1.1, the body framed from the request's length (RFC 9112 §7.1 / §6.2).
    assert sorted((r.target, len(r.body)) for r in backend.requests) == [("/a?b=c", 0), ("/up", 3000)]


def test_lua_sees_http2_in_ngx_var(start_backend: Callable[..., Any], run_rsp: Callable[..., RspProcess]) -> None:
    backend = start_backend(HttpBackend, name="b")
    prior = 'mode = "http", http2 = "prior-knowledge",'
    config = (http_config(free_port(), [backend.port]).replace('mode = "http",', prior) + "workers = 1\n"
              + 'lua = { access = function()\n'
              + '          if ngx.var.uri == "/v" then return ngx.say(ngx.var.server_protocol) end end,\n'
              + '        header_filter = function() ngx.header["X-Protocol"] = ngx.var.server_protocol end }\n')
    rsp = run_rsp(config)
    with H2Client(rsp.port) as client:
        local, proxied = client.exchange([("GET", "/v", [], b""), ("GET", "/p", [], b"")])
    assert local.status == 200 and local.body == b"HTTP/2.0\n"
    assert proxied.status == 200 and proxied.headers.get("x-protocol") == "HTTP/2.0"
