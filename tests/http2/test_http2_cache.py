"""The response cache for HTTP/2 streams: the same cache filter as HTTP/1's (rsp.cache), on a listener that takes
HTTP/2 with prior knowledge, over an h2 client. A second request for a stored page is answered from the cache
on the same connection (a HIT with Age, RFC 9111 §5.1), and the backend is asked once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.h2_client import H2Client
from support.http_backends import HttpBackend, ReceivedRequest, Reply


def cacheable(req: ReceivedRequest) -> Reply:
    return Reply(headers=[("Content-Type", "text/plain"), ("Cache-Control", "max-age=300"), ("ETag", '"v1"')],
                 body=f"page {req.target}\n".encode())


def test_a_second_http2_request_is_a_cache_hit_with_age(run_rsp: Callable[..., Any],
                                                        start_backend: Callable[..., Any],
                                                        free_port: Callable[..., int], tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, handler=cacheable)
    port = free_port()
    run_rsp(f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", cache = "pages",'
            ' http2 = "prior-knowledge" } }\n'
            f'backends = {{ "127.0.0.1:{backend.port}" }}\n'
            'http = { access_log = "off" }\n'
            f'caches = {{ pages = {{ size = "16m", path = "{tmp_path / "pages.lmdb"}" }} }}\n'
            'workers = 1\n')
    with H2Client(port) as client:
        (first,) = client.exchange([("GET", "/page", [], b"")])
        (second,) = client.exchange([("GET", "/page", [], b"")])
    assert (first.status, first.headers.get("x-cache"), first.body) == (200, "MISS", b"page /page\n")
    assert (second.status, second.headers.get("x-cache"), second.body) == (200, "HIT", b"page /page\n")
    assert second.headers.get("age") is not None and second.headers.get("etag") == '"v1"'
    assert [r.target for r in backend.requests] == ["/page"]
