"""Size and count limits of the HTTP/1.1 layer, each with the reason for its value.

A limit is checked as soon as the bytes that break it have arrived (a request line that has no CRLF
in its first 8 KiB is refused then, not when the CRLF finally comes), so no limit can be used to make
the parser buffer more than it allows.
"""

from __future__ import annotations

from typing import Final

# Request line (method SP request-target SP HTTP-version) -> 414 URI Too Long (RFC 9110 §15.5.15).
# nginx answers 414 when the request line does not fit one `large_client_header_buffers` buffer (8k by
# default); HAProxy's whole head must fit tune.bufsize (16k). 8 KiB is also RFC 9112 §3's recommended
# minimum request-line length that recipients should support.
MAX_REQUEST_LINE: Final = 8 * 1024

# Status line of a response (HTTP-version SP status-code SP reason-phrase). No server sends more than a
# few dozen bytes; we use the request-line bound so that one constant decides "a start line too long".
MAX_STATUS_LINE: Final = 8 * 1024

# Field section (every field line after the start line, plus the empty line) -> 431 Request Header
# Fields Too Large (RFC 6585 §5). nginx allows 4 x 8k buffers (32 KiB), Node.js 16 KiB, Apache 100 x 8 KiB.
# 64 KiB leaves room for large cookies and bearer tokens while bounding what one connection may make us
# buffer before a request is even routed.
MAX_HEADER_SECTION: Final = 64 * 1024

# Field lines per message -> 431. HAProxy's tune.http.maxhdr defaults to 101 and Apache's
# LimitRequestFields to 100; browsers send 10 to 20.
MAX_HEADER_COUNT: Final = 100

# Trailer sections (RFC 9112 §7.1.2) obey the same bounds as header sections: they are parsed by the
# same code and buffered the same way.
MAX_TRAILER_SECTION: Final = MAX_HEADER_SECTION
MAX_TRAILER_COUNT: Final = MAX_HEADER_COUNT

# Content-Length digits. 18 decimal digits keep every value below 2**63 (about 9.2e18), so the length
# fits a signed 64-bit integer in any backend; nothing legitimate is an exabyte. Longer -> 400
# (desync-guardian "Content-Length 64-bits overflow" is Severe).
MAX_CONTENT_LENGTH_DIGITS: Final = 18

# Hex digits of a chunk-size (RFC 9112 §7.1). 15 hex digits stay below 2**60, so a size never overflows
# a signed 64-bit integer anywhere. Leading zeros count: a line of forty zeros is refused.
MAX_CHUNK_SIZE_DIGITS: Final = 15

# A whole chunk header line (chunk-size, chunk extensions, CRLF). Node.js caps chunk extensions at
# 16 KiB since CVE-2024-22019 (unbounded chunk-extension bytes were a resource-exhaustion vector).
MAX_CHUNK_LINE: Final = 16 * 1024

# Heads a parser remembers to answer the same bytes again with the same event (its one-head memo, see
# framing.MessageParser). The repeated heads it is for -- load generators, health checks, polling clients,
# a backend's answers to them -- are a few hundred bytes. The bound keeps what an idle keep-alive
# connection holds small (the memo keeps the head's bytes and event alive until the next head) whatever
# the header limits above allow.
MAX_MEMO_HEAD: Final = 8 * 1024

# The shared head memo (request_parser.SharedHeads): the first request heads of new connections, remembered
# per process so that a connection whose first head repeats one seen on another connection skips the parse
# (a new connection has no memo of its own yet). At most this many heads of at most this size: 256 heads
# of up to 2 KiB and their events stay under ~1 MiB per process, and the heads this is for (load
# generators, health checks, API clients, the same page from many browsers) are a few hundred bytes.
MAX_SHARED_HEADS: Final = 256
MAX_SHARED_HEAD: Final = 2 * 1024
