"""An HTTP/2 client for tests of rsp.http2's sans-IO server: h2's client side for well-formed traffic, raw
hyperframe frames for the attacks, a fake clock, and a reader of the frames the server wrote.

    clock = FakeClock()
    srv = ServerConnection(Http2Settings(), clock)
    peer = H2Peer(srv)                       # sends the preface and SETTINGS, reads the server's
    events = peer.request(1, end=True)       # a GET on stream 1; the server's events
    peer.raw(SettingsFrame(0))               # any frame, bypassing the client's state machine
    peer.frames                              # every frame the server sent, parsed
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.settings
from hyperframe.frame import Frame, GoAwayFrame, RstStreamFrame

from rsp.http2.events import ConnectionEnded, Event
from rsp.http2.server import ServerConnection


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def parse_frames(data: bytes) -> list[Frame]:
    frames: list[Frame] = []
    view = memoryview(data)
    while len(view) >= 9:
        frame, length = Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9:9 + length])
        frames.append(frame)
        view = view[9 + length:]
    return frames


class H2Peer:
    """A client talking to `server` in memory. `learn_settings=False` keeps the client from reading the
    server's SETTINGS (so it does not obey SETTINGS_MAX_CONCURRENT_STREAMS: an attacker does not)."""

    def __init__(self, server: ServerConnection, learn_settings: bool = True,
                 client_settings: dict[int, int] | None = None) -> None:
        self.server = server
        # No outbound checks: tests send what a hostile client would.
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False))
        if client_settings:
            self.client.local_settings = h2.settings.Settings(client=True, initial_values=client_settings)
        self.client.initiate_connection()
        self.frames: list[Frame] = []
        self.events: list[Event] = []
        self.client_events: list[Any] = []
        self.learn = learn_settings
        self.flush()

    def flush(self) -> list[Event]:
        """Send what the client queued; read what the server answered."""
        events = self.server.receive(self.client.data_to_send())
        self.events += events
        self._read()
        return events

    def _read(self) -> None:
        out = self.server.data_to_send()
        if not out:
            return
        self.frames += parse_frames(out)
        if self.learn:
            self.client_events += self.client.receive_data(out)

    def read(self) -> None:
        self._read()

    def raw(self, *frames: Frame) -> list[Event]:
        """Send frames as they are, whatever the client's state machine thinks."""
        return self.raw_bytes(b"".join(f.serialize() for f in frames))

    def raw_bytes(self, data: bytes) -> list[Event]:
        events = self.server.receive(data)
        self.events += events
        self._read()
        return events

    def request(self, stream_id: int, end: bool = True, path: str = "/", extra: list[tuple[str, str]] | None = None,
                method: str = "GET") -> list[Event]:
        headers = [(":method", method), (":scheme", "https"), (":authority", "example.test"), (":path", path)]
        self.client.send_headers(stream_id, headers + (extra or []), end_stream=end)
        return self.flush()

    def ended_streams(self) -> list[int]:
        """Streams whose END_STREAM flag the server sent, in order."""
        return [f.stream_id for f in self.frames if "END_STREAM" in f.flags and f.stream_id]

    def goaway(self) -> GoAwayFrame | None:
        found = [f for f in self.frames if isinstance(f, GoAwayFrame)]
        return found[-1] if found else None

    def resets(self) -> dict[int, int]:
        """{stream id: error code} of the RST_STREAM frames the server sent."""
        return {f.stream_id: f.error_code for f in self.frames if isinstance(f, RstStreamFrame)}

    def ended(self) -> bool:
        return any(isinstance(e, ConnectionEnded) for e in self.events)
