"""examples/lua/: each config loads (its handlers compile for the workers' Lua), and each does what its
comment says, driven through the same wiring as a worker (rsp.lua_wiring) on plain ExchangeViews."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsp.config.lua_loader import load_config
from rsp.lua_wiring import lua_filters, prepare_shared
from rsp.pipeline.messages import LocalReply, Response
from rsp.pipeline.phases import Filter
from support.lua_exchange import FakeExchange

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "lua"
CONFIGS = sorted(p.name for p in EXAMPLES.glob("*.lua"))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def example_filter(name: str, tmp_path: Path, loop: asyncio.AbstractEventLoop) -> Filter:
    # A copy whose shared dictionaries live in the test's directory, not under /run/rsp.
    shutil.copytree(EXAMPLES, tmp_path / "lua")
    path = tmp_path / "lua" / name
    path.write_text(path.read_text() + 'if lua.shared then lua.shared_dir = "shared" end\n')
    config = load_config(str(path))
    prepare_shared(config, fresh=True)
    filters_for = lua_filters(config, loop)
    assert filters_for is not None
    return filters_for(config.listeners[0])[0]


def test_all_five_are_here() -> None:
    assert CONFIGS == ["canary.lua", "rate_limit.lua", "redis_balancer.lua", "route_by_header.lua",
                       "security_headers.lua"]


@pytest.mark.parametrize("name", CONFIGS)
def test_example_loads(name: str) -> None:
    config = load_config(str(EXAMPLES / name))
    assert config.lua is not None and config.lua.handlers


def test_canary(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    flt = example_filter("canary.lua", tmp_path, loop)
    ex = FakeExchange(headers=[(b"Cookie", b"canary=1")])
    assert flt.access(ex) is None and ex.pool == "canary"
    ex = FakeExchange(headers=[(b"Cookie", b"canary=0")])
    assert flt.access(ex) is None and ex.pool == "default"
    chosen = set()
    for port in range(40000, 40100):
        ex = FakeExchange(client_port=port)
        flt.access(ex)
        ex.response = Response(200, [])
        flt.header_filter(ex)
        cookie = ex.response.get(b"set-cookie") or b""
        assert cookie.startswith(b"canary=")
        chosen.add(ex.pool)
    assert chosen == {"default", "canary"}


def test_rate_limit(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    flt = example_filter("rate_limit.lua", tmp_path, loop)
    for _ in range(100):
        assert flt.access(FakeExchange()) is None
    reply = flt.access(FakeExchange())
    assert isinstance(reply, LocalReply) and reply.response.status == 429
    assert reply.response.get(b"retry-after") is not None
    assert flt.access(FakeExchange(client_ip="192.0.2.8")) is None  # another client has its own count


def test_route_by_header(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    flt = example_filter("route_by_header.lua", tmp_path, loop)
    ex = FakeExchange(headers=[(b"X-Tenant", b"ACME")])
    assert flt.rewrite(ex) is None and ex.pool == "acme" and ex.request.get(b"x-tenant") is None
    plain = FakeExchange()
    assert flt.rewrite(plain) is None and plain.pool == "default"
    unknown = flt.rewrite(FakeExchange(headers=[(b"X-Tenant", b"initech")]))
    assert isinstance(unknown, LocalReply) and unknown.response.status == 404


def test_security_headers(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    flt = example_filter("security_headers.lua", tmp_path, loop)
    ex = FakeExchange()
    ex.response = Response(200, [(b"Server", b"Apache"), (b"Content-Security-Policy", b"default-src 'none'")])
    assert flt.header_filter(ex) is None
    assert ex.response.get(b"server") is None
    assert ex.response.get(b"x-frame-options") == b"DENY"
    assert ex.response.get(b"content-security-policy") == b"default-src 'none'"
