"""/metrics of a running rsp, read with prometheus_client's parser, against traffic the test sent itself.

HTTP: a pool of two backends, one alive (answering 500 to some paths) and one dead port; TCP: an echo
backend, with bytes counted while the connection is still open. Plus the endpoint's own HTTP behaviour.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from support.backends import EchoBackend
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import HttpConn, build_request, http_config, lua
from support.rsp_process import RspProcess
from support.stats_client import fetch, metrics, stats_json, value
from support.waiting import wait_until

REQUESTS = 20
FAILING = 5  # of REQUESTS, answered 500 by the backend
PASSIVE_FAILURES = 3


def test_http_traffic_matches_metrics(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                                      free_port: Callable[..., int], dead_port: int) -> None:
    replies: list[int] = []

    def handler(req: ReceivedRequest) -> Reply:
        reply = (Reply(500, "Internal Server Error", body=b"broken\n") if req.target.startswith("/fail")
                 else Reply(body=f"ok {req.target}\n".encode()))
        replies.append(len(reply.encode()))
        return reply

    alive = start_backend(HttpBackend, handler, name="alive")
    stats_port = free_port()
    pools = {"web": {"backends": [f"127.0.0.1:{alive.port}", {"address": f"127.0.0.1:{dead_port}", "name": "dead"}],
                     "passive_failures": PASSIVE_FAILURES, "passive_cooldown": 300}}
    rsp = run_rsp(http_config(free_port(), [], pools=pools, pool="web",
                              # One process: each worker counts its own passive failures (docs/workers.md), and
                              # this test checks the exact count; test_counters_summed_over_workers sums workers.
                              extra=f"workers = 1\nstats = {lua({'listen': f'127.0.0.1:{stats_port}'})}"))
    sent_bytes = received_bytes = 0
    for i in range(REQUESTS):
        target = f"/fail/{i}" if i % (REQUESTS // FAILING) == 0 else f"/ok/{i}"
        request = build_request("GET", target, headers=[("Connection", "close")])
        with HttpConn(rsp.port) as conn:
            conn.send(request)
            response = conn.read_response()
        assert response.status == (500 if target.startswith("/fail") else 200)
        sent_bytes += len(request)
        received_bytes += len(response.head) + len(response.body)

    listener = {"listener": f"127.0.0.1:{rsp.port}", "mode": "http"}
    # The last exchange's counters land as its response is written: wait for the client side to settle.
    assert wait_until(lambda: value(metrics(stats_port), "rsp_listener_connections", state="active", **listener) == 0
                and value(metrics(stats_port), "rsp_listener_connections", state="idle", **listener) == 0, 5.0)
    table = metrics(stats_port)
    web_alive = {"pool": "web", "backend": "web/1"}
    web_dead = {"pool": "web", "backend": "dead"}
    requests = {code: value(table, "rsp_backend_http_requests_total", code=code, **web_alive)
                for code in ("1xx", "2xx", "3xx", "4xx", "5xx", "other")}
    assert requests == {"1xx": 0, "2xx": REQUESTS - FAILING, "3xx": 0, "4xx": 0, "5xx": FAILING, "other": 0}
    assert all(value(table, "rsp_backend_http_requests_total", code=code, **web_dead) == 0 for code in requests)
    assert value(table, "rsp_listener_http_responses_total", code="2xx", **listener) == REQUESTS - FAILING
    assert value(table, "rsp_listener_http_responses_total", code="5xx", **listener) == FAILING
    assert value(table, "rsp_listener_connections_total", **listener) == REQUESTS
    # Bytes, exactly: what the client sent and got, what the backend got and sent.
    assert value(table, "rsp_listener_received_bytes_total", **listener) == sent_bytes
    assert value(table, "rsp_listener_sent_bytes_total", **listener) == received_bytes
    assert value(table, "rsp_backend_sent_bytes_total", **web_alive) == alive.received_bytes()
    assert value(table, "rsp_backend_received_bytes_total", **web_alive) == sum(replies)
    # The dead backend: refused connects, retried elsewhere, ejected by passive health after PASSIVE_FAILURES.
    assert value(table, "rsp_backend_connect_failures_total", **web_dead) == PASSIVE_FAILURES
    assert value(table, "rsp_backend_ejections_total", **web_dead) == 1
    assert value(table, "rsp_pool_retries_total", pool="web") == PASSIVE_FAILURES
    assert value(table, "rsp_backend_state", state="down", **web_dead) == 1
    assert value(table, "rsp_backend_state", state="up", **web_alive) == 1
    assert value(table, "rsp_backend_connections_total", **web_alive) == REQUESTS
    assert value(table, "rsp_backend_connections_total", **web_dead) == PASSIVE_FAILURES
    assert all(value(table, "rsp_pool_unserved_http_requests_total", pool="web", code=c) == 0 for c in requests)
    # Upstream response times: one observation per request that reached the backend, cumulative buckets.
    assert value(table, "rsp_backend_response_seconds_count", **web_alive) == REQUESTS
    assert value(table, "rsp_backend_response_seconds_bucket", le="+Inf", **web_alive) == REQUESTS
    assert 0 < value(table, "rsp_backend_response_seconds_sum", **web_alive) < REQUESTS * 5.0
    assert value(table, "rsp_backend_response_seconds_count", **web_dead) == 0
    # Gauges: nothing in flight; the backend connection waits in the keep-alive pool.
    assert value(table, "rsp_backend_connections", state="active", **web_alive) == 0
    assert value(table, "rsp_backend_connections", state="idle", **web_alive) >= 1
    assert value(table, "rsp_workers") == 1
    assert value(table, "rsp_reloads_total") == 0
    # /stats.json tells the same story.
    document = stats_json(stats_port)
    (pool,) = document["stats"]["pools"]
    assert [b["name"] for b in pool["backends"]] == ["web/1", "dead"]
    assert pool["backends"][0]["responses"]["5xx"] == FAILING
    assert pool["backends"][1]["state"] == "down"
    (worker,) = document["machine"]["workers"]  # one worker, under the master (one model for any count)
    assert worker["pid"] != rsp.pid and worker["state"] == "running"


def test_counters_summed_over_workers(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                                      free_port: Callable[..., int]) -> None:
    """workers = 2: the master's /metrics sums what each worker counted (new connections spread over both)."""
    alive = start_backend(HttpBackend, lambda req: Reply(body=b"ok\n"), name="alive")
    stats_port = free_port()
    rsp = run_rsp(http_config(free_port(), [alive.port],
                              extra=f"workers = 2\nstats = {lua({'listen': f'127.0.0.1:{stats_port}'})}"))
    sent_bytes = 0
    for i in range(REQUESTS):
        request = build_request("GET", f"/{i}", headers=[("Connection", "close")])
        with HttpConn(rsp.port) as conn:
            conn.send(request)
            assert conn.read_response().status == 200
        sent_bytes += len(request)
    listener = {"listener": f"127.0.0.1:{rsp.port}", "mode": "http"}
    assert wait_until(lambda: value(metrics(stats_port), "rsp_listener_connections_total", **listener) == REQUESTS, 5.0)
    table = metrics(stats_port)
    assert value(table, "rsp_workers") == 2
    assert value(table, "rsp_listener_received_bytes_total", **listener) == sent_bytes
    assert value(table, "rsp_backend_http_requests_total", code="2xx", pool="default", backend="default/1") == REQUESTS
    assert value(table, "rsp_backend_response_seconds_count", pool="default", backend="default/1") == REQUESTS
    document = stats_json(stats_port)
    assert len(document["machine"]["workers"]) == 2


def test_tcp_bytes_counted_while_open(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                                      free_port: Callable[..., int]) -> None:
    echo = start_backend(EchoBackend)
    stats_port = free_port()
    config = (f'listen = {{ {{ address = "127.0.0.1", port = {free_port()}, mode = "tcp" }} }}\n'
              f'backends = {{ "127.0.0.1:{echo.port}" }}\n'
              f'stats = {{ listen = "127.0.0.1:{stats_port}" }}\nworkers = 2\n')
    rsp = run_rsp(config)
    listener = {"listener": f"127.0.0.1:{rsp.port}", "mode": "tcp"}
    backend = {"pool": "default", "backend": "default/1"}
    payload = b"x" * 100_000
    with socket.create_connection(("127.0.0.1", rsp.port), timeout=5.0) as sock:
        sock.sendall(payload)
        got = 0
        while got < len(payload):
            chunk = sock.recv(65536)
            assert chunk
            got += len(chunk)
        table = metrics(stats_port)  # the connection is still open
        assert value(table, "rsp_listener_connections", state="active", **listener) == 1
        assert value(table, "rsp_listener_received_bytes_total", **listener) == len(payload)
        assert value(table, "rsp_listener_sent_bytes_total", **listener) == len(payload)
        assert value(table, "rsp_backend_sent_bytes_total", **backend) == len(payload)
        assert value(table, "rsp_backend_received_bytes_total", **backend) == len(payload)
        assert value(table, "rsp_backend_connections", state="active", **backend) == 1
    # Closed: the relay's totals move into the counters, and nothing is counted twice.
    assert wait_until(
        lambda: value(metrics(stats_port), "rsp_listener_connections", state="active", **listener) == 0, 5.0)
    table = metrics(stats_port)
    assert value(table, "rsp_listener_connections_total", **listener) == 1
    assert value(table, "rsp_listener_received_bytes_total", **listener) == len(payload)
    assert value(table, "rsp_backend_received_bytes_total", **backend) == len(payload)
    assert ("rsp_listener_http_responses_total", frozenset({**listener, "code": "2xx"}.items())) not in table


def test_endpoint_http(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                       free_port: Callable[..., int]) -> None:
    alive = start_backend(HttpBackend, name="b")
    stats_port = free_port()
    run_rsp(http_config(free_port(), [alive.port], extra=f'stats = {{ listen = "127.0.0.1:{stats_port}" }}'))
    status, headers, body = fetch(stats_port, "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert b"<!DOCTYPE html>" in body and headers["cache-control"] == "no-store"
    assert "default-src 'none'" in headers["content-security-policy"]
    status, head_headers, head_body = fetch(stats_port, "/metrics", "HEAD")
    assert status == 200 and head_body == b"" and int(head_headers["content-length"]) > 0
    status, headers, _ = fetch(stats_port, "/metrics?x=1")
    assert status == 200
    status, headers, _ = fetch(stats_port, "/metrics", "POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, _, _ = fetch(stats_port, "/admin")
    assert status == 404
    # A malformed request gets the parser's status, then the connection closes.
    with socket.create_connection(("127.0.0.1", stats_port), timeout=5.0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in answer


def test_tcp_connect_failures_and_retries(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                                          free_port: Callable[..., int], dead_port: int) -> None:
    echo = start_backend(EchoBackend)
    stats_port = free_port()
    config = (f'listen = {{ {{ address = "127.0.0.1", port = {free_port()}, mode = "tcp", pool = "p" }} }}\n'
              f'pools = {{ p = {{ backends = {{ "127.0.0.1:{dead_port}", "127.0.0.1:{echo.port}" }}, '
              f'passive_failures = 10 }} }}\n'
              f'stats = {{ listen = "127.0.0.1:{stats_port}" }}\n'
              'workers = 1\n')  # one round robin: with workers, each has its own rotation (docs/workers.md)
    rsp = run_rsp(config)
    connections = 4
    for i in range(connections):
        with socket.create_connection(("127.0.0.1", rsp.port), timeout=5.0) as sock:
            sock.sendall(b"ping %d" % i)
            assert sock.recv(100) == b"ping %d" % i
    table = metrics(stats_port)
    failures = value(table, "rsp_backend_connect_failures_total", pool="p", backend="p/1")
    # Round robin sends every other connection to the dead backend first; each failure is retried on the echo.
    assert failures == connections // 2
    assert value(table, "rsp_pool_retries_total", pool="p") == failures
    assert value(table, "rsp_backend_connections_total", pool="p", backend="p/2") == connections
    assert value(table, "rsp_backend_connect_failures_total", pool="p", backend="p/2") == 0


def test_refusals_count_on_the_listener_only(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                                             free_port: Callable[..., int]) -> None:
    alive = start_backend(HttpBackend, name="b")
    stats_port = free_port()
    rsp = run_rsp(http_config(free_port(), [alive.port], extra=f'stats = {{ listen = "127.0.0.1:{stats_port}" }}'))
    with HttpConn(rsp.port) as conn:  # a bare LF in the head: 400 before any routing
        conn.send(b"GET / HTTP/1.1\nHost: a\r\n\r\n")
        assert conn.read_response().status == 400
    with HttpConn(rsp.port) as conn:
        conn.send(build_request("GET", "/fine"))
        assert conn.read_response().status == 200
    listener = {"listener": f"127.0.0.1:{rsp.port}", "mode": "http"}
    assert wait_until(
        lambda: value(metrics(stats_port), "rsp_listener_connections", state="active", **listener) == 0, 5.0)
    table = metrics(stats_port)
    assert value(table, "rsp_listener_http_responses_total", code="4xx", **listener) == 1
    assert value(table, "rsp_listener_http_responses_total", code="2xx", **listener) == 1
    backend = {"pool": "default", "backend": "default/1"}
    assert value(table, "rsp_backend_http_requests_total", code="4xx", **backend) == 0
    assert value(table, "rsp_backend_http_requests_total", code="2xx", **backend) == 1
    assert value(table, "rsp_pool_unserved_http_requests_total", pool="default", code="4xx") == 0
    assert alive.paths() == ["/fine"]


def test_unserved_requests_count_on_the_pool(run_rsp: Callable[..., RspProcess],
                                             free_port: Callable[..., int]) -> None:
    stats_port = free_port()
    rsp = run_rsp(http_config(free_port(), [free_port()], extra=f'stats = {{ listen = "127.0.0.1:{stats_port}" }}'))
    with HttpConn(rsp.port) as conn:  # its only backend refuses: 502 with no backend left to count it on
        conn.send(build_request("GET", "/"))
        assert conn.read_response().status == 502
    listener = {"listener": f"127.0.0.1:{rsp.port}", "mode": "http"}
    assert wait_until(
        lambda: value(metrics(stats_port), "rsp_listener_connections", state="active", **listener) == 0, 5.0)
    table = metrics(stats_port)
    assert value(table, "rsp_pool_unserved_http_requests_total", pool="default", code="5xx") == 1
    assert value(table, "rsp_listener_http_responses_total", code="5xx", **listener) == 1
    backend = {"pool": "default", "backend": "default/1"}
    assert value(table, "rsp_backend_connect_failures_total", **backend) == 1
    assert value(table, "rsp_backend_http_requests_total", code="5xx", **backend) == 0
