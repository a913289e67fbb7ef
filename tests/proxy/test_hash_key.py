"""balance_key: what a hashing pool places a request by, read off the head (no session, no sockets)."""

from __future__ import annotations

import dataclasses

from rsp.config.lua_loader import parse_config
from rsp.http1.events import NO_BODY, RequestHead
from rsp.proxy.hash_key import balance_key

HEAD = RequestHead(b"GET", b"/a?b=1", b"1.1", ((b"Host", b"x"), (b"X-User", b"alice"), (b"X-User", b"bob"),
                                                (b"Cookie", b"theme=dark; sid=42")), True, NO_BODY, host=b"x")
CONFIG = 'listen = { { port = 8080, mode = "http" } }\nbackends = { "127.0.0.1:9000" }\n'
POOL = parse_config(CONFIG, "k.lua").pools["default"]


def key(hash_key: str, hash_name: str = "") -> bytes:
    return balance_key(dataclasses.replace(POOL, hash_key=hash_key, hash_name=hash_name), HEAD, "192.0.2.7")


def test_each_source_of_the_key() -> None:
    assert key("uri") == b"/a?b=1"
    assert key("header", "x-user") == b"alice"  # the first value, the name matched case-insensitively
    assert key("cookie", "sid") == b"42"
    assert key("cookie", "missing") == b""
    assert key("header", "missing") == b""
    assert key("ip") == b"192.0.2.7"
