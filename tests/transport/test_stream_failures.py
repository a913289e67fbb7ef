"""SocketStream on real non-blocking sockets when things go wrong: a bug in a protocol callback (the stream
aborts and logs it, the loop goes on) and a peer that resets the connection, while reading, with data
queued, or while idle.

The contract tests run against both streams (the `variant` fixture, tests/transport/conftest.py): the plain
SocketStream, and TlsStream against a TLS peer (support.tls_peer.TlsPeer), which shares SocketStream's
readiness, flow control, half-close and close-after-flush code. Every test runs on each loop rsp runs on
(the `loop` fixture); the harness is support.stream_harness, the protocol a plain recorder; every loop run
is bounded in time, and every socket is closed in `finally`. The reset tests use a TCP pair on 127.0.0.1
(a reset is a TCP thing: SO_LINGER on with a zero timeout makes close() send RST).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import pytest

from rsp.logs import LOGGER_NAME
from support.sockets import nonblocking_pair
from support.stream_harness import (
    HIGH,
    LOW,
    MIB,
    Harness,
    StreamVariant,
    assert_unregistered,
    reset,
    tcp_pair,
)

# -- a bug in a protocol callback -----------------------------------------------------------------------

class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("where", ["data", "eof", "pause", "resume"])
def test_a_bug_in_a_protocol_callback_aborts_the_stream_and_is_logged(
        loop: asyncio.AbstractEventLoop, variant: StreamVariant, where: str) -> None:
    logger = logging.getLogger(LOGGER_NAME)
    records = _Records()
    logger.addHandler(records)  # on the logger itself: setup_logging() turns propagation off
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        def bug() -> None:
            raise RuntimeError(f"bug in {where}")

        h.proto.hooks[where] = bug
        blob = os.urandom(MIB)
        if where == "data":
            h.peer.sendall(b"boom")
        elif where == "eof":
            h.peer.shutdown(socket.SHUT_WR)
        else:
            h.stream.set_write_buffer_limits(high=HIGH, low=LOW)
            h.stream.write(blob)  # pause_writing runs inside write(); write() must not raise
            if where == "resume":
                assert not h.stream.is_closing()
                # resume_writing raises once the queue is at most LOW; what is left then is dropped.
                got, end = h.drain(5.0)
                assert end == "eof" and MIB - LOW <= len(got) <= MIB and got == blob[:len(got)]
        assert h.run_until(h.lost)
        h.run(0.1)  # the loop goes on, and nothing is registered to make it spin
        assert h.proto.count(where) == 1
        assert h.proto.args("lost") == [None]
        assert h.stream.is_closing() and h.ours.fileno() == -1
        assert_unregistered(loop, h.fd)
        errors = [r for r in records.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        message = errors[0].getMessage()
        assert "internal error" in message and f"RuntimeError: bug in {where}" in message
        assert "198.51.100.7" in message  # names the connection
        assert errors[0].exc_info is not None
        assert h.loop_errors == []
    finally:
        logger.removeHandler(records)
        h.close()


# -- peer reset (TCP) -----------------------------------------------------------------------------------

def test_peer_reset_while_reading(loop: asyncio.AbstractEventLoop, variant: StreamVariant) -> None:
    ours, peer, address = tcp_pair()
    h = Harness(loop, ours, peer, peername=address, variant=variant)
    try:
        h.run(0.02)
        reset(h.peer)
        assert h.run_until(h.lost)
        h.run(0.05)
        [exc] = h.proto.args("lost")
        assert isinstance(exc, ConnectionResetError)  # recv() reports ECONNRESET
        assert h.proto.names() == ["made", "lost"]
        assert h.ours.fileno() == -1
        assert h.loop_errors == []
    finally:
        h.close()


@pytest.mark.parametrize("closing", [False, True], ids=["open", "after-close"])
def test_peer_reset_with_data_queued(loop: asyncio.AbstractEventLoop, variant: StreamVariant, closing: bool) -> None:
    ours, peer, address = tcp_pair(small_buffers=True)
    h = Harness(loop, ours, peer, peername=address, variant=variant)
    try:
        h.stream.write(os.urandom(4 * MIB))
        h.run(0.05)
        assert h.stream.get_write_buffer_size() > 0  # the peer is not reading: the kernel buffers are full
        if closing:
            h.stream.close()
        reset(h.peer)
        assert h.run_until(h.lost)
        h.run(0.05)
        [exc] = h.proto.args("lost")
        # Open: the reader runs first on the error event and recv() reports ECONNRESET. Closing: only the
        # writer is registered, and send() reports the pending ECONNRESET before any EPIPE.
        assert isinstance(exc, ConnectionResetError)
        assert h.proto.names() == ["made", "pause", "lost"]
        assert h.stream.get_write_buffer_size() == 0
        assert h.ours.fileno() == -1
        assert_unregistered(loop, h.fd)
        assert h.loop_errors == []
    finally:
        h.close()


def test_peer_reset_while_idle_is_found_by_the_next_write(loop: asyncio.AbstractEventLoop,
                                                          variant: StreamVariant) -> None:
    ours, peer, address = tcp_pair()
    h = Harness(loop, ours, peer, peername=address, variant=variant)
    try:
        h.stream.pause_reading()  # nothing registered: the reset goes unnoticed for now
        reset(h.peer)
        h.run(0.05)
        assert h.proto.names() == ["made"]
        h.stream.write(b"anyone there?")  # must not raise
        assert not h.lost()  # connection_lost comes in a later iteration
        assert h.run_until(h.lost)
        [exc] = h.proto.args("lost")
        assert isinstance(exc, ConnectionResetError)
        h.stream.write(b"again")  # ignored once closed
        h.run(0.05)
        assert h.proto.count("lost") == 1
        assert h.loop_errors == []
    finally:
        h.close()
