"""Complete responses rsp answers by itself: errors, and 100 Continue.

Every error response carries `Connection: close` (rsp closes the connection after an error: the byte
stream cannot be trusted to be at a message boundary) and an exact Content-Length. They are built once
at import; answering costs a dictionary lookup.
"""

from __future__ import annotations

from rsp.http1.reasons import reason

# The statuses rsp answers by itself (their phrases: rsp.http1.reasons).
ERROR_STATUSES: tuple[int, ...] = (400, 403, 404, 408, 413, 414, 417, 431, 500, 501, 502, 503, 504, 505)

CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"


def _build(status: int, html: bool, head_only: bool) -> bytes:
    title = f"{status} {reason(status)}"
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
    for status in ERROR_STATUSES
    for html in (True, False)
    for head_only in (True, False)
}


def error_response(status: int, *, html: bool = True, head_only: bool = False) -> bytes:
    """The whole response for `status` (an error status, 4xx or 5xx). `head_only` for an answer to HEAD
    (RFC 9110 §9.3.2: same fields, no content)."""
    cached = _CACHE.get((status, html, head_only))
    return cached if cached is not None else _build(status, html, head_only)
