"""Routing rules: host exact/wildcard/default, path prefix, method; first match wins."""

from __future__ import annotations

import pytest

from rsp.config.lua_loader import parse_config
from rsp.config.model import Route
from rsp.errors import ConfigError
from rsp.routes.router import Router, host_only

ROUTER = Router(
    [
        Route(pool="api-write", host="api.example.com", path_prefix="/v1", methods=frozenset({"POST", "PUT"})),
        Route(pool="api", host="api.example.com"),
        Route(pool="tenants", host="*.apps.example.com"),
        Route(pool="static", path_prefix="/static/"),
    ],
    default="web",
)


@pytest.mark.parametrize(
    ("host", "path", "method", "pool"),
    [
        (b"api.example.com", b"/v1/items", b"POST", "api-write"),
        (b"API.Example.com:8443", b"/v1/items", b"PUT", "api-write"),
        (b"api.example.com", b"/v1/items", b"GET", "api"),
        (b"api.example.com", b"/v2", b"POST", "api"),
        (b"one.apps.example.com", b"/", b"GET", "tenants"),
        (b"a.b.apps.example.com", b"/", b"GET", "web"),  # one label only (rsp.server_names)
        (b"apps.example.com", b"/", b"GET", "web"),  # the wildcard does not match the apex
        (b"evilapps.example.com", b"/", b"GET", "web"),
        (b"www.example.com", b"/static/app.js", b"GET", "static"),
        (b"www.example.com", b"/staticky", b"GET", "web"),
        (b"", b"/", b"GET", "web"),
    ],
)
def test_routes(host: bytes, path: bytes, method: bytes, pool: str) -> None:
    assert ROUTER.pool_for(host, path, method) == pool


def test_host_only_strips_port_and_case() -> None:
    assert host_only(b"Example.COM:8080") == "example.com"
    assert host_only(b"[::1]:80") == "[::1]"


def test_routes_from_lua() -> None:
    cfg = parse_config(
        'backends = {"127.0.0.1:1"}\npools = { api = { backends = {"127.0.0.1:2"} } }\n'
        'listen = {{ port = 80, mode = "http" }}\n'
        'routes = { { host = "*.example.com", path = "/api", methods = {"get"}, pool = "api" } }\n',
        "r.lua",
    )
    assert cfg.routes == (Route(pool="api", host="*.example.com", path_prefix="/api", methods=frozenset({"GET"})),)


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ('{ { host = "a.*.com", pool = "default" } }', "wildcard must be a leading"),
        ('{ { path = "api", pool = "default" } }', "must start with '/'"),
        ('{ { host = "x" } }', "routes[1].pool is missing"),
        ('{ { pool = "nope" } }', "names pool 'nope'"),
    ],
)
def test_bad_routes(routes: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f'backends = {{"127.0.0.1:1"}}\nlisten = {{{{ port = 80 }}}}\nroutes = {routes}\n', "r.lua")
    assert message in str(info.value) and info.value.line == 3
