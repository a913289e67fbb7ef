"""HTTP/2 frames as bytes (RFC 9113 §4.1, §6): what rsp's server connection writes, appended to one buffer.

Every frame is a 9-octet header (24-bit length, type, flags, reserved bit and 31-bit stream id) and its
payload; each `put_` function appends one frame (or a header block's frames) to `out`. A large DATA payload
is not appended anywhere: `data_header` makes its frame header alone, and the frame layer keeps the payload
as it came, beside it (rsp.http2.core: the pieces are joined once per write).
"""

from __future__ import annotations

import struct
from typing import Final

from rsp.http2 import codes

# SETTINGS identifiers (§6.5.2).
HEADER_TABLE_SIZE: Final = 0x1
ENABLE_PUSH: Final = 0x2
MAX_CONCURRENT_STREAMS: Final = 0x3
INITIAL_WINDOW_SIZE: Final = 0x4
MAX_FRAME_SIZE: Final = 0x5
MAX_HEADER_LIST_SIZE: Final = 0x6
SETTING_SIZE: Final = 6  # 16-bit identifier, 32-bit value
# §6.5.2: SETTINGS_MAX_FRAME_SIZE's allowed range, and its initial value for both ends.
MIN_MAX_FRAME_SIZE: Final = 16384
MAX_MAX_FRAME_SIZE: Final = 2**24 - 1
# §6.9.2: every window starts at 65535; no window may exceed 2^31-1 (§6.9.1).
DEFAULT_WINDOW: Final = 65535
MAX_WINDOW: Final = 2**31 - 1
PING_SIZE: Final = 8  # §6.7
RST_STREAM_SIZE: Final = 4  # §6.4
WINDOW_UPDATE_SIZE: Final = 4  # §6.9
PRIORITY_SIZE: Final = 5  # §6.3 (and the priority fields of a HEADERS frame with the PRIORITY flag, §6.2)
PRIORITY_FLAG: Final = 0x20  # HEADERS (§6.2)
# The 9-octet frame header (§4.1) in one pack: the 24-bit length as its high octet and low 16 bits.
_FRAME_HEADER: Final = struct.Struct(">BHBBL")


def put_header(out: bytearray, length: int, kind: int, flags: int, stream_id: int) -> None:
    out += _FRAME_HEADER.pack(length >> 16, length & 0xFFFF, kind, flags, stream_id)


def put_data(out: bytearray, stream_id: int, data: bytes | memoryview, end_stream: bool) -> None:
    put_header(out, len(data), codes.DATA, codes.END_STREAM if end_stream else 0, stream_id)
    out += data


def data_header(stream_id: int, length: int, end_stream: bool) -> bytes:
    """The 9-octet header of a DATA frame whose `length` payload octets follow it (§6.1)."""
    return _FRAME_HEADER.pack(length >> 16, length & 0xFFFF, codes.DATA, codes.END_STREAM if end_stream else 0,
                              stream_id)


def put_header_block(out: bytearray, stream_id: int, block: bytes, end_stream: bool, max_frame: int) -> None:
    """A HEADERS frame and as many CONTINUATION frames as the peer's SETTINGS_MAX_FRAME_SIZE needs (§6.10);
    END_HEADERS on the last, END_STREAM on the HEADERS frame (§6.2)."""
    first = block[:max_frame]
    flags = codes.END_STREAM if end_stream else 0
    if len(block) <= max_frame:
        put_header(out, len(first), codes.HEADERS, flags | codes.END_HEADERS, stream_id)
        out += first
        return
    put_header(out, len(first), codes.HEADERS, flags, stream_id)
    out += first
    pos = max_frame
    while pos < len(block):
        part = block[pos:pos + max_frame]
        pos += max_frame
        put_header(out, len(part), codes.CONTINUATION, codes.END_HEADERS if pos >= len(block) else 0, stream_id)
        out += part


def put_settings(out: bytearray, values: list[tuple[int, int]]) -> None:
    put_header(out, SETTING_SIZE * len(values), codes.SETTINGS, 0, 0)
    for ident, value in values:
        out += ident.to_bytes(2, "big")
        out += value.to_bytes(4, "big")


def put_settings_ack(out: bytearray) -> None:
    put_header(out, 0, codes.SETTINGS, codes.ACK, 0)


def put_ping(out: bytearray, payload: bytes, ack: bool) -> None:
    put_header(out, PING_SIZE, codes.PING, codes.ACK if ack else 0, 0)
    out += payload


def put_window_update(out: bytearray, stream_id: int, increment: int) -> None:
    put_header(out, WINDOW_UPDATE_SIZE, codes.WINDOW_UPDATE, 0, stream_id)
    out += increment.to_bytes(4, "big")


def put_rst_stream(out: bytearray, stream_id: int, error_code: int) -> None:
    put_header(out, RST_STREAM_SIZE, codes.RST_STREAM, 0, stream_id)
    out += error_code.to_bytes(4, "big")


def put_goaway(out: bytearray, last_stream_id: int, error_code: int, debug: bytes) -> None:
    put_header(out, 8 + len(debug), codes.GOAWAY, 0, 0)
    out += last_stream_id.to_bytes(4, "big")
    out += error_code.to_bytes(4, "big")
    out += debug
