"""Attacks over a real socket against rsp's HTTP/2 listener: the attacker's connection is ended with the
right GOAWAY, and another client on the same listener keeps being served meanwhile. Also a backend that
dies mid-response (only its stream is reset) and a graceful stop with a stream in flight."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import hpack
from hyperframe.frame import ContinuationFrame, GoAwayFrame, HeadersFrame, RstStreamFrame, SettingsFrame

from rsp.http2 import codes
from rsp.http2.codes import PREFACE
from support.h2_client import H2Client
from support.h2_peer import parse_frames
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.rsp_process import RspProcess, free_port

Start = Callable[..., Any]
Run = Callable[..., RspProcess]


def config(port: int, backend: int, extra: str = "") -> str:
    return f"""
listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", http2 = "prior-knowledge" }} }}
backends = {{ "127.0.0.1:{backend}" }}
http = {{ access_log = "off" }}
workers = 1
{extra}
"""


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data


def attack(port: int, frames: Callable[[int], bytes], rounds: int) -> GoAwayFrame | None:
    """Send the preface and `rounds` batches of attack frames (as fast as the socket takes them), then read
    what rsp answered until it closed the connection."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(PREFACE + SettingsFrame(0).serialize())
        try:
            for i in range(rounds):
                sock.sendall(frames(i))
        except (BrokenPipeError, ConnectionResetError):
            pass  # rsp closed the connection before the attack was over: what the test wants
        got = read_until_closed(sock)
    goaways = [f for f in parse_frames(got) if isinstance(f, GoAwayFrame)]
    return goaways[-1] if goaways else None


def test_rapid_reset_over_a_socket_is_cut_and_others_are_served(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(config(free_port(), backend.port))
    encoder = hpack.Encoder()
    request = [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/rr")]

    def open_and_reset(i: int) -> bytes:
        sid = 2 * i + 1
        return (HeadersFrame(sid, data=encoder.encode(request), flags=["END_HEADERS", "END_STREAM"]).serialize()
                + RstStreamFrame(sid, error_code=codes.CANCEL).serialize())

    results: list[int] = []

    def bystander() -> None:
        with H2Client(rsp.port) as client:
            results.extend(r.status for r in client.exchange([("GET", "/ok", [], b"")]))

    goaway = attack(rsp.port, open_and_reset, 5000)
    thread = threading.Thread(target=bystander)
    thread.start()
    thread.join(20)
    assert goaway is not None and goaway.error_code == codes.ENHANCE_YOUR_CALM
    assert results == [200]
    # The bound held: far fewer than the 5000 requests reached the backend.
    assert len(backend.requests) <= 201 + 1


def test_continuation_flood_over_a_socket_is_cut(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(config(free_port(), backend.port))
    block = hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/")])

    def frames(i: int) -> bytes:
        if i == 0:
            return HeadersFrame(1, data=block).serialize()  # no END_HEADERS
        return ContinuationFrame(1, data=b"a" * 16000).serialize()

    goaway = attack(rsp.port, frames, 1000)
    assert goaway is not None and goaway.error_code == codes.ENHANCE_YOUR_CALM
    with H2Client(rsp.port) as client:
        assert [r.status for r in client.exchange([("GET", "/ok", [], b"")])] == [200]


def test_a_backend_dying_mid_response_resets_only_its_stream(start_backend: Start, run_rsp: Run) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        if req.target == "/die":
            # Promises 100000 bytes, sends 5, closes.
            return Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nhello", close=True)
        return Reply(body=b"fine")

    backend = start_backend(HttpBackend, handler=handler, name="b")
    rsp = run_rsp(config(free_port(), backend.port))
    with H2Client(rsp.port) as client:
        dying, fine = client.exchange([("GET", "/die", [], b""), ("GET", "/fine", [], b"")])
        assert dying.reset is not None and not dying.ended
        assert fine.status == 200 and fine.body == b"fine"
        # The connection is still usable.
        (again,) = client.exchange([("GET", "/fine", [], b"")])
        assert again.body == b"fine"


def test_stop_lets_a_stream_in_flight_finish(start_backend: Start, run_rsp: Run) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        return Reply(body=b"late but whole", delay=1.5)

    backend = start_backend(HttpBackend, handler=handler, name="b")
    rsp = run_rsp(config(free_port(), backend.port))
    results = []
    goaways: list[GoAwayFrame] = []

    def slow_client() -> None:
        with H2Client(rsp.port, timeout=20) as client:
            results.extend(client.exchange([("GET", "/slow", [], b"")]))
            client.sock.settimeout(5)
            while not any(g.last_stream_id == 1 for g in client.goaways):
                data = client.sock.recv(65536)  # the final GOAWAY may follow the response
                if not data:
                    break
                client.conn.receive_data(client._without_goaway(data))
            goaways.extend(client.goaways)

    thread = threading.Thread(target=slow_client)
    thread.start()
    deadline = time.monotonic() + 10
    while not backend.requests and time.monotonic() < deadline:
        backend.got_request.wait(0.1)
    time.sleep(0.3)  # the request is at the backend, its answer 1.5 s away
    stopper = threading.Thread(target=rsp.stop)
    stopper.start()
    thread.join(20)
    stopper.join(40)
    assert len(results) == 1 and results[0].status == 200 and results[0].body == b"late but whole"
    # The graceful shutdown's GOAWAY came first (2^31-1: streams in flight go on), before the response.
    assert goaways and goaways[0].last_stream_id == codes.MAX_STREAM_ID and goaways[0].error_code == 0
    assert goaways[-1].last_stream_id == 1  # then the final one, naming the last stream it processed
