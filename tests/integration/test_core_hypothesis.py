"""Property: however the client chunks and paces its writes and reads, rsp delivers the same bytes.

One rsp and one echo backend serve every example. The client writes random-sized chunks with small random
pauses on one thread while reading with random sizes and pauses on another; what comes back through
client -> rsp -> echo -> rsp -> client must equal what was sent, and the echo backend must have received
exactly as many bytes as were sent.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.backends import EchoBackend
from support.client import connect
from support.rsp_process import RspProcess, free_port, legacy_config
from support.waiting import wait_until

PAUSES = st.sampled_from([0.0, 0.0, 0.0, 0.001, 0.003, 0.01])
WRITES = st.lists(st.tuples(st.binary(min_size=1, max_size=20_000), PAUSES), min_size=1, max_size=12)
READS = st.lists(st.tuples(st.integers(min_value=1, max_value=70_000), PAUSES), min_size=1, max_size=12)


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RspProcess, EchoBackend]]:
    with EchoBackend() as echo:
        path = Path(tmp_path_factory.mktemp("rsp-hypothesis")) / "rsp.lua"
        path.write_text(legacy_config(free_port(), echo.port))
        rsp = RspProcess(path)
        try:
            rsp.start()
            yield rsp, echo
        finally:
            rsp.stop()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writes=WRITES, reads=READS)
def test_chunking_and_pacing_never_change_the_bytes(
    relay: tuple[RspProcess, EchoBackend], writes: list[tuple[bytes, float]], reads: list[tuple[int, float]]
) -> None:
    rsp, echo = relay
    expected = b"".join(chunk for chunk, _ in writes)
    echoed_before = echo.received
    writer_errors: list[BaseException] = []

    with connect(rsp.port, timeout=10.0) as sock:

        def write() -> None:
            try:
                for chunk, pause in writes:
                    sock.sendall(chunk)
                    if pause:
                        time.sleep(pause)
                sock.shutdown(socket.SHUT_WR)
            except BaseException as exc:
                writer_errors.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        received = bytearray()
        step = 0
        deadline = time.monotonic() + 10.0
        try:
            while time.monotonic() < deadline:
                size, pause = reads[step % len(reads)]
                step += 1
                chunk = sock.recv(size)
                if not chunk:
                    break
                received += chunk
                if pause:
                    time.sleep(pause)
        finally:
            writer.join(10.0)
    assert writer_errors == []
    assert bytes(received) == expected
    assert wait_until(lambda: echo.received - echoed_before == len(expected), timeout=2.0)
    assert rsp.alive
