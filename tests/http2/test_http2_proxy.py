"""rsp's HTTP/2 listener, black box: curl and an h2 client through rsp to HTTP/1.1 backends on loopback.

The contract tests at the end run the same HTTP behaviours over HTTP/1.1 and HTTP/2 on one listener
(`http2 = "prior-knowledge"` serves both): routing by Host, X-Forwarded-For, 502 on a dead backend, a
large body both ways.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from support.h2_client import H2Client
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import HttpConn, http_config
from support.payload import payload
from support.rsp_process import RspProcess, free_port
from support.stats_client import metrics, stats_json, value
from support.waiting import wait_until

Start = Callable[..., Any]
Run = Callable[..., RspProcess]
PRIOR = 'mode = "http", http2 = "prior-knowledge",'


def h2_config(backends: list[int | str], **kwargs: Any) -> str:
    return http_config(free_port(), backends, **kwargs).replace('mode = "http",', PRIOR) + "workers = 1\n"


def test_curl_with_prior_knowledge_through_rsp(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    out = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}",
                          f"http://127.0.0.1:{rsp.port}/hello?x=1"], capture_output=True, timeout=20, check=True)
    body, _, status = out.stdout.rpartition(b"\n")
    assert status == b"2 200", out
    assert body.startswith(b"b GET /hello?x=1 "), body
    # The backend got HTTP/1.1 with the Host curl's :authority named.
    request = backend.requests[0]
    assert request.header("host") == f"127.0.0.1:{rsp.port}"


def test_http1_keeps_working_on_the_same_listener(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    with HttpConn(rsp.port) as conn:
        response = conn.request("GET", "/h1")
        assert response.status == 200 and response.body.startswith(b"b GET /h1 "), response
    with H2Client(rsp.port) as client:
        (response2,) = client.exchange([("GET", "/h2", [], b"")])
    assert response2.status == 200 and response2.body.startswith(b"b GET /h2 "), response2


def test_many_concurrent_streams_on_one_connection(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    with H2Client(rsp.port) as client:
        responses = client.exchange([("GET", f"/s{i}", [], b"") for i in range(60)])
    assert [r.status for r in responses] == [200] * 60
    assert sorted(r.body.split(b" ")[2] for r in responses) == sorted(f"/s{i}".encode() for i in range(60))
    assert sorted(backend.paths()) == sorted(f"/s{i}" for i in range(60))


def test_request_body_streams_to_the_backend_with_flow_control(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    body = payload(3 * 1024 * 1024)  # 48 windows of 64 KiB: only WINDOW_UPDATEs let it through
    with H2Client(rsp.port, timeout=30) as client:
        with_length, chunked = client.exchange([
            ("POST", "/upload", [("content-length", str(len(body)))], body),
            ("PUT", "/chunked", [], body[:100_000]),  # no content-length: chunked to the backend
        ])
    assert with_length.status == 200 and with_length.body.endswith(f"body={len(body)}\n".encode()), with_length
    assert chunked.status == 200 and chunked.body.endswith(b"body=100000\n"), chunked
    received = {r.target: r.body for r in backend.requests}
    assert received["/upload"] == body and received["/chunked"] == body[:100_000]


def test_head_and_response_trailers_and_hop_by_hop_fields(start_backend: Start, run_rsp: Run) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        return Reply(headers=[("Content-Type", "text/plain"), ("Keep-Alive", "timeout=5")], body=b"abc",
                     send_body=req.method != "HEAD")

    backend = start_backend(HttpBackend, handler=handler, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    with H2Client(rsp.port) as client:
        get, head = client.exchange([("GET", "/g", [], b""), ("HEAD", "/h", [], b"")])
    assert get.body == b"abc" and "keep-alive" not in get.headers and "connection" not in get.headers
    assert head.status == 200 and head.body == b"" and head.ended


def test_a_10_mib_download_through_a_small_window(start_backend: Start, run_rsp: Run) -> None:
    big = payload(10 * 1024 * 1024)

    def handler(req: ReceivedRequest) -> Reply:
        return Reply(headers=[("Content-Type", "application/octet-stream")], body=big)

    backend = start_backend(HttpBackend, handler=handler, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    # 16 KiB windows (stream and connection): 640 WINDOW_UPDATE round trips; rsp holds the rest back.
    with H2Client(rsp.port, timeout=60, window=16384) as client:
        (download,) = client.exchange([("GET", "/big", [], b"")])
    assert download.status == 200 and len(download.body) == len(big) and download.body == big


def test_a_stream_whose_client_does_not_read_does_not_stall_the_others(start_backend: Start, run_rsp: Run) -> None:
    big = payload(4 * 1024 * 1024)

    def handler(req: ReceivedRequest) -> Reply:
        return Reply(body=big if req.target == "/slow" else b"quick")

    backend = start_backend(HttpBackend, handler=handler, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    with H2Client(rsp.port, timeout=30) as client:
        slow, *quick = client.exchange([("GET", "/slow", [], b"")] + [("GET", f"/q{i}", [], b"") for i in range(20)],
                                       hold=frozenset({0}))
        # Later requests on the same connection are served too while /slow waits.
        (later,) = client.exchange([("GET", "/later", [], b"")])
    assert all(r.status == 200 and r.body == b"quick" for r in quick)
    assert later.body == b"quick"
    # The slow stream got at most its window's worth (SETTINGS_INITIAL_WINDOW_SIZE) by then, and no end; rsp
    # holds the rest back and stops reading its backend (the backpressure of docs/http2.md).
    assert slow.status == 200 and 0 < len(slow.body) <= 65535 and not slow.ended


def test_response_trailers_and_interim_responses_pass_through(start_backend: Start, run_rsp: Run) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        if req.target == "/trailers":
            return Reply(raw=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                             b"5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
        return Reply(raw=b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    backend = start_backend(HttpBackend, handler=handler, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    with H2Client(rsp.port) as client:
        trailers, hints = client.exchange([("GET", "/trailers", [("te", "trailers")], b""), ("GET", "/hints", [], b"")])
    assert trailers.body == b"hello" and trailers.trailers == {"x-sum": "42"}, trailers
    assert hints.informational == [103] and hints.status == 200 and hints.body == b"ok", hints


def test_nghttp_client(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    urls = [f"http://127.0.0.1:{rsp.port}/n{i}" for i in range(5)]
    out = subprocess.run(["nghttp", "-n", "--stat", *urls], capture_output=True, timeout=30, check=True)
    assert sorted(backend.paths()) == [f"/n{i}" for i in range(5)], out
    assert out.stdout.count(b" 200 ") == 5, out.stdout


# ---- the same contract over HTTP/1.1 and HTTP/2 --------------------------------------------------------------

@dataclass
class Answer:
    status: int
    body: bytes


def ask(protocol: str, port: int, method: str, path: str, headers: list[tuple[str, str]] | None = None,
        body: bytes = b"", authority: str = "") -> Answer:
    headers = headers or []
    if protocol == "h2":
        with H2Client(port, timeout=30, authority=authority) as client:
            (r,) = client.exchange([(method, path, headers, body)])
        return Answer(r.status, r.body)
    with HttpConn(port) as conn:
        r1 = conn.request(method, path, host=authority or "example.com", headers=headers, body=body)
    return Answer(r1.status, r1.body)


PROTOCOLS = pytest.mark.parametrize("protocol", ["http/1.1", "h2"])


@PROTOCOLS
def test_contract_routing_by_host(protocol: str, start_backend: Start, run_rsp: Run) -> None:
    a = start_backend(HttpBackend, name="a")
    b = start_backend(HttpBackend, name="b")
    rsp = run_rsp(h2_config([], pools={"pa": {"backends": [f"127.0.0.1:{a.port}"]},
                                       "pb": {"backends": [f"127.0.0.1:{b.port}"]}},
                            routes=[{"host": "b.example", "pool": "pb"}], pool="pa"))
    assert ask(protocol, rsp.port, "GET", "/r", authority="b.example").body.startswith(b"b GET /r ")
    assert ask(protocol, rsp.port, "GET", "/r", authority="other.example").body.startswith(b"a GET /r ")


@PROTOCOLS
def test_contract_x_forwarded_for(protocol: str, start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    assert ask(protocol, rsp.port, "GET", "/xff").status == 200
    request = backend.requests[0]
    assert request.header("x-forwarded-for") == "127.0.0.1"
    assert request.header("x-forwarded-proto") == "http"


@PROTOCOLS
def test_contract_502_when_the_backend_is_down(protocol: str, run_rsp: Run) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    rsp = run_rsp(h2_config([dead]))
    assert ask(protocol, rsp.port, "GET", "/dead").status == 502


@PROTOCOLS
def test_contract_large_bodies_both_ways(protocol: str, start_backend: Start, run_rsp: Run) -> None:
    big = payload(2 * 1024 * 1024)

    def handler(req: ReceivedRequest) -> Reply:
        return Reply(headers=[("Content-Type", "application/octet-stream")], body=req.body)  # echo

    backend = start_backend(HttpBackend, handler=handler, name="b")
    rsp = run_rsp(h2_config([backend.port]))
    answer = ask(protocol, rsp.port, "POST", "/echo", headers=[("content-length", str(len(big)))], body=big)
    assert answer.status == 200 and answer.body == big


def test_metrics_count_http2_connections_and_streams(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    stats_port = free_port()
    rsp = run_rsp(h2_config([backend.port], extra=f'stats = {{ listen = "127.0.0.1:{stats_port}" }}'))
    with H2Client(rsp.port) as client:
        responses = client.exchange([("GET", f"/m{i}", [], b"") for i in range(3)])
    assert [r.status for r in responses] == [200] * 3
    with HttpConn(rsp.port) as conn:
        assert conn.request("GET", "/h1").status == 200
    listener = {"listener": f"127.0.0.1:{rsp.port}", "mode": "http"}
    assert wait_until(
        lambda: value(metrics(stats_port), "rsp_listener_http_responses_total", code="2xx", **listener) == 4, 5.0)
    table = metrics(stats_port)
    assert value(table, "rsp_listener_connections_total", **listener) == 2  # one HTTP/2, one HTTP/1.1
    assert value(table, "rsp_listener_http2_connections_total", **listener) == 1
    assert value(table, "rsp_listener_http2_streams_total", **listener) == 3
    listed = stats_json(stats_port)["stats"]["listeners"][0]
    assert (listed["http2_connections"], listed["http2_streams"]) == (1, 3)
