"""One stream's state on the server side and its response bytes waiting for flow-control window.

A stream's response data waits here while the client's window (the stream's or the connection's, RFC 9113
§5.2) or the socket cannot take it; only this stream waits, the others keep sending. Its buffer is bounded
by the caller: `send_data` says when to stop (STREAM_HIGH_WATER, CONNECTION_HIGH_WATER) and a
StreamWritable event says when to go on.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from rsp.pipeline.messages import Header, Request

# Response bytes one stream holds before its producer is asked to pause (and resumes below the low mark):
# two 64 KiB backend reads, so a stream at full speed never waits for its own producer.
STREAM_HIGH_WATER: Final = 128 * 1024
STREAM_LOW_WATER: Final = 32 * 1024
# Response bytes all streams of a connection hold together before every producer pauses.
CONNECTION_HIGH_WATER: Final = 1024 * 1024


class Stream:
    """A stream from its request head to the end of its response (or a reset).

    pending: response chunks not yet framed, the first one's first `offset` bytes framed already (a chunk
    is cut into DATA frames as views of it, never copied: docs/performance.md, "DATA without copies").
    end/trailers: send_end came (with these trailers).
    paused: send_data returned False and no StreamWritable has followed yet.
    blocked_since: when the window last stopped this stream's data (the send timeout), None when moving.
    unacked: request-body bytes received and not yet acknowledged (returned to the connection window when
    the stream ends early).
    """

    __slots__ = ("blocked_since", "end", "expected", "head_sent", "id", "offset", "paused", "pending", "pending_bytes",
                 "received", "request", "request_ended", "trailers", "unacked")

    def __init__(self, stream_id: int, request: Request) -> None:
        self.id = stream_id
        self.request = request
        self.pending: deque[bytes] = deque()
        self.offset = 0
        self.pending_bytes = 0
        self.end = False
        self.trailers: list[Header] = []
        self.head_sent = False
        self.paused = False
        self.blocked_since: float | None = None
        self.unacked = 0
        # Request-body bytes received, and the Content-Length they must add up to (RFC 9113 §8.1.1; copied
        # here, as the pipeline may change the request's own body_length).
        self.received = 0
        self.expected = request.body_length
        self.request_ended = False  # the client's END_STREAM came

    def take(self, window: int) -> bytes | memoryview:
        """Up to `window` bytes from the front of the pending data (window > 0, pending not empty): the
        chunk itself when it fits whole, else a view of its part (no copy; the frame layer only reads it)."""
        chunk = self.pending[0]
        pos = self.offset
        left = len(chunk) - pos
        piece: bytes | memoryview
        if left <= window:
            self.pending.popleft()
            self.offset = 0
            piece = chunk if pos == 0 else memoryview(chunk)[pos:]
        else:
            left = window
            self.offset = pos + window
            piece = memoryview(chunk)[pos:pos + window]
        self.pending_bytes -= left
        return piece

    def clear(self) -> None:
        """Drop the unsent data (the stream is over)."""
        self.pending.clear()
        self.offset = 0
        self.pending_bytes = 0
