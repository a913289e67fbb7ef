"""Sans-IO HTTP/1.1: bytes in -> events out (parser), events in -> bytes out (forward, error_pages).

No asyncio and no sockets here; the I/O layer feeds received bytes to a parser and writes the bytes the
helpers build. See rsp/http1/README.md for the API and the strictness rules.
"""

from rsp.http1.events import (
    CHUNKED,
    END_OF_MESSAGE,
    NO_BODY,
    UNTIL_CLOSE,
    Data,
    EndOfMessage,
    Event,
    Framing,
    Headers,
    RequestHead,
    ResponseHead,
)
from rsp.http1.parser import RequestParser, ResponseParser

__all__ = [
    "CHUNKED",
    "END_OF_MESSAGE",
    "NO_BODY",
    "UNTIL_CLOSE",
    "Data",
    "EndOfMessage",
    "Event",
    "Framing",
    "Headers",
    "RequestHead",
    "RequestParser",
    "ResponseHead",
    "ResponseParser",
]
