"""Complete responses rsp answers by itself: errors, and 100 Continue.

Every error response carries `Connection: close` (rsp closes the connection after an error: the byte
stream cannot be trusted to be at a message boundary) and an exact Content-Length. They are built once
at import; answering costs a dictionary lookup.
"""

from __future__ import annotations

# Reason phrases (RFC 9110 §15; RFC 6585 §5 for 431).
REASONS: dict[int, str] = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}

CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"


def _build(status: int, html: bool, head_only: bool) -> bytes:
    title = f"{status} {REASONS.get(status, 'Error')}"
    if html:
        body = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n"
            f"<body>\r\n<h1>{title}</h1>\r\n</body>\r\n</html>\r\n"
        )
        content_type = "text/html"
    else:
        body = title + "\n"
        content_type = "text/plain"
    encoded = body.encode("ascii")
    head = (
        f"HTTP/1.1 {title}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(encoded)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("ascii")
    return head if head_only else head + encoded


_CACHE: dict[tuple[int, bool, bool], bytes] = {
    (status, html, head_only): _build(status, html, head_only)
    for status in REASONS
    for html in (True, False)
    for head_only in (True, False)
}


def error_response(status: int, *, html: bool = True, head_only: bool = False) -> bytes:
    """The whole response for `status` (an error status, 4xx or 5xx). `head_only` for an answer to HEAD
    (RFC 9110 §9.3.2: same fields, no content)."""
    cached = _CACHE.get((status, html, head_only))
    return cached if cached is not None else _build(status, html, head_only)
