"""The frame gate: reads the 9-byte header of every frame a client sends before h2 parses the frame.

Why rsp reads frame headers itself instead of trusting h2 with the raw bytes (docs/http2.md, "What h2 does
and what rsp counts"):
- h2's FrameBuffer waits for a frame's whole declared length before it checks that length against
  SETTINGS_MAX_FRAME_SIZE, so a header declaring 16 MiB makes it buffer up to 16 MiB first. The gate
  refuses the frame on its header (FRAME_SIZE_ERROR, RFC 9113 §4.2).
- h2 joins a header block's CONTINUATION frames in memory and caps only their count (64). The gate bounds
  the block's encoded bytes, frame headers included, and its frame count, as the frames arrive and before
  any HPACK decoding (CONTINUATION flood, CVE-2024-27316 family). A block refused undecoded leaves the
  HPACK state unknown, so that is a connection error (§4.3).
- The flood counters (rsp.http2.flood) count SETTINGS, PING, PRIORITY, empty DATA, WINDOW_UPDATE and
  unknown frames here, on the header, for the price of a compare.
- GOAWAY frames are taken out of the stream h2 sees: h2 treats a received GOAWAY as the end of everything
  (it stops sending, even the responses of streams the GOAWAY lets finish, §6.8). The connection handles
  them itself (rsp.http2.server).
"""

from __future__ import annotations

from collections.abc import Callable

from rsp.config.model import Http2Settings
from rsp.errors import Http2ConnectionError
from rsp.http2 import codes
from rsp.http2.flood import (
    CLOSED_STREAM_DATA,
    EMPTY_DATA_FRAMES,
    PING_FRAMES,
    PRIORITY_FRAMES,
    SETTINGS_FRAMES,
    UNKNOWN_FRAMES,
    WINDOW_UPDATE_FRAMES,
    FloodMeter,
)

_FLOODABLE = {codes.PRIORITY: PRIORITY_FRAMES, codes.WINDOW_UPDATE: WINDOW_UPDATE_FRAMES}
_UNLESS_ACK = {codes.SETTINGS: SETTINGS_FRAMES, codes.PING: PING_FRAMES}


class FrameGate:
    """Feed it what the client sent; it returns the bytes h2 may parse and keeps the GOAWAY frames aside.

    `goaways`: the payloads of the GOAWAY frames received (taken by the connection).
    `block_started`: the clock time an unfinished header block began, or None (the header timeout).
    """

    __slots__ = ("_block_bytes", "_block_frames", "_clock", "_divert", "_goaway", "_head", "_in_block",
                 "_left", "_max_block", "_max_block_frames", "_max_frame", "_meter", "_pad_check",
                 "_preface_left", "_stream_closed", "block_started", "goaways")

    def __init__(self, settings: Http2Settings, meter: FloodMeter, clock: Callable[[], float],
                 preface: bool = True, stream_closed: Callable[[int], bool] | None = None) -> None:
        """`stream_closed(id)`: whether a DATA frame on that stream would land on a closed stream (h2 would
        answer it with RST_STREAM); None: not counted."""
        self._stream_closed = stream_closed
        self._max_frame = settings.max_frame_size
        self._max_block = settings.max_header_block_size
        self._max_block_frames = settings.max_header_frames
        self._meter = meter
        self._clock = clock
        self._preface_left = len(codes.PREFACE) if preface else 0
        self._head = bytearray()  # a frame header split across reads
        self._left = 0  # payload bytes of the current frame still to come
        self._divert = False  # the current frame is a GOAWAY: its bytes go to _goaway, not to h2
        self._goaway = bytearray()
        self._pad_check = False  # the current frame is a padded DATA frame: look at its pad length
        self._in_block = False  # a header block's END_HEADERS has not come yet
        self._block_bytes = 0
        self._block_frames = 0
        self.block_started: float | None = None
        self.goaways: list[bytes] = []

    def feed(self, data: bytes) -> bytes:
        """The part of `data` h2 should parse (all of it unless a GOAWAY frame or a partial frame header is in
        it: a header split across reads is held until it is whole). Raises Http2ConnectionError when a frame
        breaks a limit."""
        if self._head:
            data = bytes(self._head) + data
            self._head.clear()
        n = len(data)
        pos = 0
        if self._preface_left:
            # h2 checks the preface itself; the gate only skips it.
            pos = min(self._preface_left, n)
            self._preface_left -= pos
        kept: list[bytes] | None = None  # set when some bytes are held back or diverted
        keep_from = 0
        while pos < n:
            if self._left:
                take = min(self._left, n - pos)
                if self._pad_check:
                    self._pad_check = False
                    # A padded DATA frame whose payload is all padding carries nothing (RFC 9113 §6.1).
                    if data[pos] + 1 >= self._left:
                        self._meter.hit(EMPTY_DATA_FRAMES)
                if self._divert:
                    self._goaway += data[pos:pos + take]
                self._left -= take
                pos += take
                if self._divert and not self._left:
                    self._end_goaway()
                    keep_from = pos
                continue
            if n - pos < codes.FRAME_HEADER_SIZE:
                self._head += data[pos:]
                break
            start = pos
            # (octet by octet: a slice and int.from_bytes cost ~10x more compiled)
            length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
            kind = data[pos + 3]
            flags = data[pos + 4]
            if kind == codes.DATA and self._stream_closed is not None and self._stream_closed(
                    ((data[pos + 5] & 0x7F) << 24) | (data[pos + 6] << 16) | (data[pos + 7] << 8) | data[pos + 8]):
                self._meter.hit(CLOSED_STREAM_DATA)
            pos += codes.FRAME_HEADER_SIZE
            self._left = length
            if self._on_header(length, kind, flags):
                # A GOAWAY frame: h2 gets what came before its header; the frame goes aside.
                kept = [] if kept is None else kept
                if start > keep_from:
                    kept.append(data[keep_from:start])
                self._divert = True
                keep_from = pos
                if not length:
                    self._end_goaway()
            elif not self._pad_check and length <= n - pos:
                # The whole payload is here and nothing in it is looked at: past it in one step.
                pos += length
                self._left = 0
        if kept is None and not keep_from and not self._divert and not self._head:
            return data  # the common case: nothing diverted, nothing held
        if kept is None:
            kept = []
        end = n - len(self._head)
        if not self._divert and keep_from < end:
            kept.append(data[keep_from:end])
        return b"".join(kept)

    def _end_goaway(self) -> None:
        self.goaways.append(bytes(self._goaway))
        self._goaway.clear()
        self._divert = False

    def _on_header(self, length: int, kind: int, flags: int) -> bool:
        """Check one frame header; True if the frame is a GOAWAY (diverted)."""
        if length > self._max_frame:
            raise Http2ConnectionError(f"frame of {length} bytes, more than SETTINGS_MAX_FRAME_SIZE "
                                       f"{self._max_frame}", codes.FRAME_SIZE_ERROR)
        if kind == codes.CONTINUATION:
            if self._in_block:
                self._count_block(length, flags)
            return False
        if kind == codes.HEADERS:
            self._block_bytes = 0
            self._block_frames = 0
            self._in_block = True
            if not flags & codes.END_HEADERS:
                # The header timeout runs only while a block waits for its CONTINUATION frames; a block in
                # one frame (nearly all) costs no clock read.
                self.block_started = self._clock()
            self._count_block(length, flags)
            return False
        if kind == codes.DATA:
            if flags & codes.PADDED and length:
                self._pad_check = True
            elif not length and not flags & codes.END_STREAM:
                self._meter.hit(EMPTY_DATA_FRAMES)
            return False
        if kind == codes.GOAWAY:
            return True
        if kind in _UNLESS_ACK:
            if not flags & codes.ACK:
                self._meter.hit(_UNLESS_ACK[kind])
        elif kind in _FLOODABLE:
            self._meter.hit(_FLOODABLE[kind])
        elif kind > codes.CONTINUATION:
            self._meter.hit(UNKNOWN_FRAMES)
        return False

    def _count_block(self, length: int, flags: int) -> None:
        self._block_bytes += codes.FRAME_HEADER_SIZE + length
        self._block_frames += 1
        if self._block_bytes > self._max_block:
            raise Http2ConnectionError(f"header block over {self._max_block} bytes before decoding",
                                       codes.ENHANCE_YOUR_CALM)
        if self._block_frames > self._max_block_frames:
            raise Http2ConnectionError(f"header block over {self._max_block_frames} frames (CONTINUATION "
                                       "flood)", codes.ENHANCE_YOUR_CALM)
        if flags & codes.END_HEADERS:
            self._in_block = False
            self.block_started = None
