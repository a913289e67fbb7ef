"""The pipeline's filter phases for HTTP/2 streams: the same Python filter as tests/integration's HTTP/1 test,
on a listener that takes HTTP/2 with prior knowledge, over an h2 client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.test_http_filters import Gate, config_for, serve
from support.h2_client import H2Client
from support.http_backends import HttpBackend


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    server = HttpBackend(name="b")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_python_filter_on_every_phase_over_http2(backend: HttpBackend, tmp_path: Path) -> None:
    log = tmp_path / "filter.log"
    config = config_for(backend).replace('mode = "http"', 'mode = "http", http2 = "prior-knowledge"')
    for port in serve(config, [Gate(log)]):
        with H2Client(port) as client:
            denied, ok = client.exchange([("GET", "/a", [], b""), ("GET", "/old/x", [("x-token", "t")], b"")])
    assert denied.status == 403 and denied.body == b"DENIED\n"
    assert ok.status == 200 and ok.headers.get("x-filtered") == "1"
    assert ok.body == ok.body.upper() and ok.body
    assert [r.target for r in backend.requests] == ["/new/x"]
    assert sorted(log.read_text().splitlines()) == sorted(["403 - /a", f"200 127.0.0.1:{backend.port} /new/x"])
