"""From the config to filters: which listener gets which cache, routes' caches, the default store file."""

from __future__ import annotations

import os
from pathlib import Path

from rsp.cache.cache_filter import CacheFilter
from rsp.cache.selector import CacheSelector
from rsp.cache.wiring import cache_filters_for, default_path
from rsp.config.lua_loader import parse_config
from rsp.pipeline.messages import Request


def config_text(tmp_path: Path, listener_cache: str = "", route_cache: str = "") -> str:
    lc = f', cache = "{listener_cache}"' if listener_cache else ""
    rc = f', cache = "{route_cache}"' if route_cache else ""
    return (f'listen = {{ {{ port = 8080, mode = "http"{lc} }}, {{ port = 8081, mode = "tcp" }} }}\n'
            'backends = { "127.0.0.1:9000" }\n'
            f'caches = {{ a = {{ path = "{tmp_path}/a.lmdb", size = "4m" }}, b = {{ path = "{tmp_path}/b.lmdb" }} }}\n'
            f'routes = {{ {{ path = "/static/", pool = "default"{rc} }}, {{ path = "/", pool = "default" }} }}\n')


def test_no_cache_named_no_filter(tmp_path: Path) -> None:
    config = parse_config(config_text(tmp_path), "rsp.lua")
    for_listener = cache_filters_for(config)
    assert [for_listener(lst) for lst in config.listeners] == [[], []]


def test_listener_cache_is_one_filter_for_every_request(tmp_path: Path) -> None:
    config = parse_config(config_text(tmp_path, listener_cache="a"), "rsp.lua")
    (flt,) = cache_filters_for(config)(config.listeners[0])
    assert isinstance(flt, CacheFilter) and flt.settings.name == "a" and flt.store.path == f"{tmp_path}/a.lmdb"
    assert cache_filters_for(config)(config.listeners[1]) == []


def test_route_cache_wins_over_the_listener_cache(tmp_path: Path) -> None:
    config = parse_config(config_text(tmp_path, listener_cache="a", route_cache="b"), "rsp.lua")
    (selector,) = cache_filters_for(config)(config.listeners[0])
    assert isinstance(selector, CacheSelector)
    static = selector.pick(b"example.com", b"/static/x.css", b"GET")
    other = selector.pick(b"example.com", b"/page", b"GET")
    assert static is not None and static.settings.name == "b"
    assert other is not None and other.settings.name == "a"


def test_route_cache_without_listener_cache(tmp_path: Path) -> None:
    config = parse_config(config_text(tmp_path, route_cache="b"), "rsp.lua")
    (selector,) = cache_filters_for(config)(config.listeners[0])
    assert isinstance(selector, CacheSelector)
    assert selector.pick(b"h", b"/page", b"GET") is None

    class Ex:
        def __init__(self) -> None:
            self.request = Request(b"GET", b"http", b"h", b"/page", [])
            self.ctx: dict[str, object] = {}
            self.response = None

    ex = Ex()
    assert selector.access(ex) is None and ex.ctx == {}  # type: ignore[arg-type]


def test_one_store_per_cache_in_a_process(tmp_path: Path) -> None:
    config = parse_config(config_text(tmp_path, listener_cache="a", route_cache="a"), "rsp.lua")
    first = cache_filters_for(config)(config.listeners[0])[0]
    second = cache_filters_for(config)(config.listeners[0])[0]
    assert isinstance(first, CacheSelector) and isinstance(second, CacheSelector)
    assert first.default is not None and second.default is not None
    assert first.default.store is second.default.store


def test_memory_backed_file_is_named_after_user_config_and_cache() -> None:
    one = default_path("/etc/rsp/a.lua", "pages")
    assert one == default_path("/etc/rsp/../rsp/a.lua", "pages")
    assert one != default_path("/etc/rsp/b.lua", "pages") and one != default_path("/etc/rsp/a.lua", "other")
    assert os.path.basename(one).startswith(f"rsp-cache-{os.getuid()}-") and one.endswith("-pages.lmdb")
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        assert one.startswith("/dev/shm/")
