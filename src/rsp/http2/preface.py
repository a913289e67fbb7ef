"""Prior knowledge on a plain listener (`http2 = "prior-knowledge"`): tell HTTP/2 from HTTP/1.1 by the
first bytes (RFC 9113 §3.3).

An HTTP/2 client with prior knowledge starts with the connection preface `PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n`
(§3.4). No HTTP/1.1 request starts that way: the PRI method is reserved for it (RFC 9113 §11.1, RFC 7540
§11.6), so the choice is exact, and a plain HTTP/1.1 client on the same listener is served as before.
HTTP/1.1 is decided on the first byte in the common case (any method but PRI), so HTTP/1 pays one compare.
"""

from __future__ import annotations

from typing import Final

from rsp.http2.codes import PREFACE

HTTP2: Final = "h2"
HTTP1: Final = "http/1.1"
UNDECIDED: Final = ""  # a prefix of the preface so far: wait for more bytes


def sniff(first: bytes) -> str:
    """HTTP2, HTTP1, or UNDECIDED for the bytes a connection has sent so far."""
    if first[:1] != b"P":
        return HTTP1 if first else UNDECIDED
    n = min(len(first), len(PREFACE))
    if first[:n] != PREFACE[:n]:
        return HTTP1
    return HTTP2 if n == len(PREFACE) else UNDECIDED
