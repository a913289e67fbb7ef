"""A listener's `http2` key: forms, limits, the errors naming line and key, and ALPN offered."""

from __future__ import annotations

import pytest

from rsp.config.lua_loader import parse_config
from rsp.config.model import Http2Settings
from rsp.errors import ConfigError
from rsp.tls.server_context import listener_alpn

TAIL = '\nbackends = { "127.0.0.1:9000" }\n'


def listener(extra: str) -> str:
    return 'listen = { { address = "127.0.0.1", port = 8080, mode = "http", ' + extra + " } }" + TAIL


def test_prior_knowledge_and_limits() -> None:
    config = parse_config(listener('http2 = "prior-knowledge"'), "rsp.lua")
    assert config.listeners[0].http2 == Http2Settings(mode="prior-knowledge")
    config = parse_config(listener('http2 = { mode = "prior-knowledge", max_concurrent_streams = 10, '
                                   "idle_timeout = 5, max_resets = 50 }"), "rsp.lua")
    h2 = config.listeners[0].http2
    assert h2 is not None
    assert (h2.max_concurrent_streams, h2.idle_timeout, h2.max_resets) == (10, 5.0, 50)
    assert h2.initial_window_size == Http2Settings().initial_window_size


def test_off_by_default_and_false_is_off() -> None:
    assert parse_config(listener(""), "rsp.lua").listeners[0].http2 is None
    assert parse_config(listener("http2 = false"), "rsp.lua").listeners[0].http2 is None


@pytest.mark.parametrize(("extra", "key"), [
    ("http2 = true", "listen[1].http2"),  # ALPN needs tls
    ('http2 = "yes"', "listen[1].http2"),
    ("http2 = { max_frame_size = 100 }", "listen[1].http2.max_frame_size"),  # RFC 9113 §6.5.2 minimum
    ("http2 = { mode = 'prior-knowledge', bogus = 1 }", "listen[1].http2.bogus"),
    ("http2 = { mode = 'prior-knowledge', idle_timeout = -1 }", "listen[1].http2.idle_timeout"),
])
def test_errors_name_line_and_key(extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(listener(extra), "rsp.lua")
    assert info.value.key == key
    assert info.value.line == 1


def test_a_tcp_listener_cannot_have_http2() -> None:
    text = 'listen = { { address = "127.0.0.1", port = 8080, http2 = "prior-knowledge" } }' + TAIL
    with pytest.raises(ConfigError, match='needs mode = "http"'):
        parse_config(text, "rsp.lua")


def test_alpn_offers_h2_first_only_with_http2() -> None:
    assert listener_alpn("http", True) == ("h2", "http/1.1")
    assert listener_alpn("http", False) == ("http/1.1",)
    assert listener_alpn("tcp", True) == ()
