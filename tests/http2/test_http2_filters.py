"""The pipeline's filter phases for HTTP/2 streams: the same Python filter as tests/integration's HTTP/1 test,
on a listener that takes HTTP/2 with prior knowledge, over an h2 client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rsp.pipeline.phases import SUSPEND, ExchangeView, Filter, Verdict
from support.filter_server import Gate, config_for, serve
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


class WholeBody(Filter):
    """access: waits for the whole request body, then replaces it with its length in decimal."""

    name = "whole-body"

    def access(self, exchange: ExchangeView) -> Verdict:
        if exchange.read_body(lambda: self._done(exchange)):
            self._replace(exchange)
            return None
        return SUSPEND

    def _done(self, exchange: ExchangeView) -> None:
        self._replace(exchange)
        exchange.resume()

    def _replace(self, exchange: ExchangeView) -> None:
        data = exchange.body_data()
        exchange.set_body(b"%d" % len(data or b""))


def test_a_filter_reads_a_body_larger_than_the_stream_window_whole(backend: HttpBackend, tmp_path: Path) -> None:
    # The held body is credited to the client as it arrives: a filter waiting for the whole body does not
    # wait on flow-control credit that only the backend connection would give (RFC 9113 §6.9).
    config = config_for(backend).replace('mode = "http"', 'mode = "http", http2 = "prior-knowledge"')
    size = 200_000  # over the default 65,535-byte stream window
    for port in serve(config, [WholeBody()]):
        with H2Client(port) as client:
            (reply,) = client.exchange([("POST", "/up", [], b"x" * size)])
    assert reply.status == 200
    assert backend.requests[-1].body == b"%d" % size
