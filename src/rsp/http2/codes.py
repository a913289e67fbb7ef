"""HTTP/2 frame types, flags and error codes (RFC 9113 §6, §7), as plain ints for the frame gate's reads."""

from __future__ import annotations

from typing import Final

# The connection preface a client sends first (RFC 9113 §3.4).
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER_SIZE: Final = 9  # 24-bit length, 8-bit type, 8-bit flags, 31-bit stream id (§4.1)

# Frame types (§6).
DATA: Final = 0x0
HEADERS: Final = 0x1
PRIORITY: Final = 0x2
RST_STREAM: Final = 0x3
SETTINGS: Final = 0x4
PUSH_PROMISE: Final = 0x5
PING: Final = 0x6
GOAWAY: Final = 0x7
WINDOW_UPDATE: Final = 0x8
CONTINUATION: Final = 0x9

# Flags (§6.1-§6.10).
END_STREAM: Final = 0x1
ACK: Final = 0x1
END_HEADERS: Final = 0x4
PADDED: Final = 0x8

# Error codes (§7).
NO_ERROR: Final = 0x0
PROTOCOL_ERROR: Final = 0x1
INTERNAL_ERROR: Final = 0x2
FLOW_CONTROL_ERROR: Final = 0x3
STREAM_CLOSED: Final = 0x5
FRAME_SIZE_ERROR: Final = 0x6
REFUSED_STREAM: Final = 0x7
CANCEL: Final = 0x8
COMPRESSION_ERROR: Final = 0x9
ENHANCE_YOUR_CALM: Final = 0xB

# The largest stream id (§5.1.1), the last-stream-id of the first GOAWAY of a graceful shutdown (§6.8).
MAX_STREAM_ID: Final = 2**31 - 1
