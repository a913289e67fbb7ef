"""A blocking HTTP/2 client on a real socket (h2's client side), for loopback tests of rsp's HTTP/2 listener.

    with H2Client(port) as c:                         # prior knowledge; H2Client(port, tls=context) for ALPN
        responses = c.exchange([("GET", "/a", [], b""), ("POST", "/b", [], b"body")])
        responses[0].status, responses[0].headers, responses[0].body, responses[0].trailers

Every request of one `exchange` call goes out at once, each on its own stream of the one connection; the
client reads until every stream ended or was reset, acknowledging what it reads (a flow-control window
that stays open), within `timeout` seconds.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.settings
from hyperframe.frame import Frame, GoAwayFrame

Headers = list[tuple[str, str]]


@dataclass
class H2Response:
    stream_id: int
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    trailers: dict[str, str] = field(default_factory=dict)
    reset: int | None = None  # the RST_STREAM error code, when the stream was reset
    informational: list[int] = field(default_factory=list)  # the statuses of 1xx heads before the final one
    ended: bool = False


class H2Client:
    def __init__(self, port: int, tls: ssl.SSLContext | None = None, server_name: str = "localhost",
                 timeout: float = 10.0, authority: str = "", window: int = 0) -> None:
        """`window`: the client's SETTINGS_INITIAL_WINDOW_SIZE and connection window (0: the defaults, and
        the connection window opened wide)."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock: socket.socket = tls.wrap_socket(raw, server_hostname=server_name) if tls else raw
        self.alpn = self.sock.selected_alpn_protocol() if isinstance(self.sock, ssl.SSLSocket) else None
        self.timeout = timeout
        self.authority = authority or f"127.0.0.1:{port}"
        self.scheme = "https" if tls else "http"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        if window:
            self.conn.local_settings = h2.settings.Settings(
                client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.conn.initiate_connection()
        if not window:
            self.conn.increment_flow_control_window(2**30)  # the client never holds the server back
        self.sock.sendall(self.conn.data_to_send())
        self.goaways: list[GoAwayFrame] = []
        self._partial = b""

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def exchange(self, requests: list[tuple[str, str, Headers, bytes]],
                 hold: frozenset[int] = frozenset()) -> list[H2Response]:
        """`hold`: indexes of requests whose stream window the client never reopens (a slow reader): their
        responses are returned as far as they got once every other stream has ended."""
        out: dict[int, H2Response] = {}
        self.held: set[int] = set()
        bodies: dict[int, bytes] = {}
        for method, path, headers, body in requests:
            sid = self.conn.get_next_available_stream_id()
            fields = [(":method", method), (":scheme", self.scheme), (":authority", self.authority),
                      (":path", path), *headers]
            self.conn.send_headers(sid, fields, end_stream=not body)
            out[sid] = H2Response(sid)
            if len(out) - 1 in hold:
                self.held.add(sid)
            if body:
                bodies[sid] = body
        self._send_bodies(bodies)
        deadline = time.monotonic() + self.timeout
        while not all(r.ended or r.reset is not None for r in out.values() if r.stream_id not in self.held):
            if time.monotonic() > deadline:
                raise TimeoutError(f"streams not finished: {[r for r in out.values() if not r.ended]}")
            data = self.sock.recv(65536)
            if not data:
                break
            for event in self.conn.receive_data(self._without_goaway(data)):
                self._on_event(event, out)
            self._send_bodies(bodies)
        return list(out.values())

    def _without_goaway(self, data: bytes) -> bytes:
        """The bytes without GOAWAY frames (kept in `goaways`): h2's client stops reading at a GOAWAY, where
        a graceful one (RFC 9113 §6.8) still has a PING and the responses in flight behind it."""
        buf = self._partial + data
        kept = []
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            frame, buf = buf[:9 + length], buf[9 + length:]
            if frame[3] == 0x7:
                goaway, _ = Frame.parse_frame_header(memoryview(frame[:9]))
                goaway.parse_body(memoryview(frame[9:]))
                assert isinstance(goaway, GoAwayFrame)
                self.goaways.append(goaway)
            else:
                kept.append(frame)
        self._partial = buf
        return b"".join(kept)

    def _send_bodies(self, bodies: dict[int, bytes]) -> None:
        """Send what the windows allow of each pending body (the rest after the next WINDOW_UPDATE)."""
        for sid in list(bodies):
            body = bodies[sid]
            while body:
                window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
                if window <= 0:
                    break
                self.conn.send_data(sid, body[:window])
                body = body[window:]
            if body:
                bodies[sid] = body
            else:
                self.conn.end_stream(sid)
                del bodies[sid]
        self.sock.sendall(self.conn.data_to_send())

    def _on_event(self, event: h2.events.Event, out: dict[int, H2Response]) -> None:
        sid = getattr(event, "stream_id", 0)
        response = out.get(sid)
        if isinstance(event, h2.events.ResponseReceived) and response is not None:
            headers = dict(event.headers or [])
            response.status = int(headers.pop(":status"))
            response.headers = headers
        elif isinstance(event, h2.events.InformationalResponseReceived) and response is not None:
            response.informational.append(int(dict(event.headers or [])[":status"]))
        elif isinstance(event, h2.events.DataReceived) and response is not None:
            response.body += event.data or b""
            if sid in self.held:
                # Only the connection's window reopens: the other streams must not wait for this one.
                self.conn.increment_flow_control_window(event.flow_controlled_length or 0)
            else:
                self.conn.acknowledge_received_data(event.flow_controlled_length or 0, sid)
        elif isinstance(event, h2.events.TrailersReceived) and response is not None:
            response.trailers = dict(event.headers or [])
        elif isinstance(event, h2.events.StreamEnded) and response is not None:
            response.ended = True
        elif isinstance(event, h2.events.StreamReset) and response is not None:
            response.reset = int(event.error_code or 0)
