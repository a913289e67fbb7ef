"""`caches` and `cache = "NAME"` on listeners and routes: defaults, sizes, errors naming line and key."""

from __future__ import annotations

import pytest

from rsp.config.lua_loader import parse_config
from rsp.config.model import DEFAULT_CACHE_MAX_OBJECT, DEFAULT_CACHE_SIZE
from rsp.errors import ConfigError

BASE = ('listen = { { address = "127.0.0.1", port = 8080, mode = "http", cache = "pages" } }\n'
        'backends = { "127.0.0.1:9000" }\n')


def test_defaults() -> None:
    config = parse_config(BASE + "caches = { pages = {} }\n", "rsp.lua")
    pages = config.caches["pages"]
    assert (pages.size, pages.max_object, pages.path, pages.heuristic, pages.cookies, pages.header) == (
        DEFAULT_CACHE_SIZE, DEFAULT_CACHE_MAX_OBJECT, "", False, False, "X-Cache")
    assert config.listeners[0].cache == "pages"


def test_values_and_size_suffixes() -> None:
    config = parse_config(BASE + 'caches = { pages = { size = "2g", max_object = "512k", path = "/var/cache/p.lmdb",'
                          ' heuristic = true, cookies = true, header = "X-Rsp-Cache" },\n'
                          '  small = { size = 2097152 } }\n'
                          'routes = { { path = "/static/", pool = "default", cache = "small" } }\n', "rsp.lua")
    pages, small = config.caches["pages"], config.caches["small"]
    assert (pages.size, pages.max_object, pages.path) == (2 << 30, 512 << 10, "/var/cache/p.lmdb")
    assert pages.heuristic and pages.cookies and pages.header == "X-Rsp-Cache"
    assert small.size == 2 << 20 and small.max_object == int(small.size * 0.6)  # default capped to fit
    assert config.routes[0].cache == "small"


def test_no_caches_key_means_no_cache() -> None:
    config = parse_config('listen = { { port = 8080, mode = "http" } }\nbackends = { "127.0.0.1:9000" }\n', "r.lua")
    assert config.caches == {} and config.listeners[0].cache == ""


@pytest.mark.parametrize(("caches", "key", "line"), [
    ('caches = { pages = { size = "lots" } }', "caches.pages.size", 3),
    ('caches = { pages = { size = "100k" } }', "caches.pages.size", 3),
    ('caches = { pages = {\n  size = "1m",\n  max_object = "1m" } }', "caches.pages.max_object", 5),
    ('caches = { pages = { path = "relative.lmdb" } }', "caches.pages.path", 3),
    ('caches = { pages = { header = "X Cache" } }', "caches.pages.header", 3),
    ('caches = { pages = { heuristic = "yes" } }', "caches.pages.heuristic", 3),
    ('caches = { pages = {\n  sise = "1m" } }', "caches.pages.sise", 4),
])
def test_errors_name_line_and_key(caches: str, key: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + caches + "\n", "/etc/rsp.lua")
    assert (info.value.key, info.value.line, info.value.path) == (key, line, "/etc/rsp.lua")


def test_listener_naming_an_undefined_cache() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + "caches = { other = {} }\n", "rsp.lua")
    assert info.value.key == "listen[1].cache" and info.value.line == 1
    assert "'pages'" in info.value.message


def test_cache_needs_an_http_listener() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('listen = { { port = 8080, cache = "pages" } }\nbackends = { "127.0.0.1:9000" }\n'
                     "caches = { pages = {} }\n", "rsp.lua")
    assert info.value.key == "listen[1].cache" and "mode" in info.value.message


def test_route_naming_an_undefined_cache() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + 'caches = { pages = {} }\nroutes = {\n  { pool = "default", cache = "nope" } }\n',
                     "rsp.lua")
    assert (info.value.key, info.value.line) == ("routes[1].cache", 5)


def test_grace_seconds() -> None:
    config = parse_config(BASE + "caches = { pages = { grace = 30 } }\n", "rsp.lua")
    assert config.caches["pages"].grace == 30.0
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + "caches = { pages = { grace = -1 } }\n", "rsp.lua")
    assert info.value.key == "caches.pages.grace"


def test_purge_addresses() -> None:
    config = parse_config(BASE + 'caches = { pages = { purge = { "127.0.0.1", "10.0.0.0/8", "::1" } } }\n', "r.lua")
    assert config.caches["pages"].purge == ("127.0.0.1", "10.0.0.0/8", "::1")
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + 'caches = { pages = { purge = { "127.0.0.1", "nowhere" } } }\n', "r.lua")
    assert (info.value.key, info.value.line) == ("caches.pages.purge[2]", 3)


def test_the_example_config_loads() -> None:
    from pathlib import Path

    from rsp.config.lua_loader import load_config

    example = Path(__file__).resolve().parents[2] / "examples" / "cache.lua"
    config = load_config(str(example))
    assert config.listeners[0].cache == "pages" and config.caches["pages"].grace == 30.0
