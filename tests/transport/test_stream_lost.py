"""connection_lost on rsp's loop: from the next iteration (never inside close()), once, through the poller's
deferred list rather than an asyncio Handle. The protocol here is an ordinary asyncio one: rsp's native
protocols (NativeProtocol, compiled; no interpreted subclass can exist) take the same path, which every
HTTP loopback test drives through ClientSide and UpstreamSide."""

from __future__ import annotations

import asyncio

from rsp.transport.event_loop import RspEventLoop
from rsp.transport.stream import SocketStream
from support.sockets import nonblocking_pair


class Recorder(asyncio.Protocol):
    """Every callback the stream makes, in order."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.events.append(data)

    def eof_received(self) -> bool | None:
        self.events.append("eof")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")


def turn(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


def test_connection_lost_comes_from_the_next_iteration_once_without_an_asyncio_handle() -> None:
    loop = RspEventLoop()
    mine, peer = nonblocking_pair()
    try:
        protocol = Recorder()
        stream = SocketStream(loop, mine, protocol)
        stream.start()
        peer.send(b"hello")
        for _ in range(50):
            if b"hello" in protocol.events:
                break
            turn(loop)
        assert protocol.events == ["made", b"hello"]
        stream.close()
        assert protocol.events == ["made", b"hello"]  # not from inside close()
        assert not loop._ready  # type: ignore[attr-defined]  # no Handle queued for it
        turn(loop)
        assert protocol.events == ["made", b"hello", ("lost", None)]
        turn(loop)
        assert protocol.events.count(("lost", None)) == 1
    finally:
        peer.close()
        mine.close()
        loop.close()


def test_the_peer_ending_reaches_the_protocol_as_eof_then_lost() -> None:
    loop = RspEventLoop()
    mine, peer = nonblocking_pair()
    try:
        protocol = Recorder()
        stream = SocketStream(loop, mine, protocol)
        stream.start()
        peer.close()
        for _ in range(50):
            if ("lost", None) in protocol.events:
                break
            turn(loop)
        assert protocol.events == ["made", "eof", ("lost", None)]
    finally:
        mine.close()
        loop.close()
