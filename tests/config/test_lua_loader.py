"""The Lua config loader: both config forms, and an error for every way a config can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsp.config.lua_loader import load_config, parse_config
from rsp.config.model import Backend
from rsp.errors import ConfigError


def fails(source: str, path: str = "/etc/rsp/test.lua") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(source, path)
    return info.value


def test_original_three_globals_on_one_line() -> None:
    cfg = parse_config('listenPort = 8000 backendAddress = "127.0.0.1" backendPort = 9000', "a.lua")
    assert [(lst.host, lst.port, lst.pool, lst.mode) for lst in cfg.listeners] == [("0.0.0.0", 8000, "default", "tcp")]
    assert cfg.pools["default"].backends == (Backend("127.0.0.1", 9000),)


@pytest.mark.parametrize("port", ['"8000"', "8000", "8000.0"])
def test_ports_may_be_strings_or_numbers(port: str) -> None:
    cfg = parse_config(f'listenPort = {port}\nbackendAddress = "localhost"\nbackendPort = "9000"', "a.lua")
    assert cfg.listeners[0].port == 8000
    assert cfg.pools["default"].backends[0].port == 9000


def test_rich_form_listeners_pools_and_timeouts() -> None:
    cfg = parse_config(
        """
        listen = { { address = "127.0.0.1", port = 8000 }, { address = "::1", port = 8000, pool = "web" } }
        backends = { "127.0.0.1:9001", { address = "127.0.0.1", port = 9002, weight = 2, name = "b" } }
        pools = { web = { algorithm = "leastconn", retries = 1,
                          backends = { { address = "[::1]:9003", backup = true, max_conns = 10 } },
                          health = { kind = "http", path = "/health", interval = 0.5, rise = 1, fall = 2 } } }
        timeouts = { connect = 2, idle = 60, drain = 0 }
        buffer = { high_water = 65536, low_water = 1024 }
        """,
        "rich.lua",
    )
    assert [(lst.host, lst.port, lst.pool) for lst in cfg.listeners] == [
        ("127.0.0.1", 8000, "default"), ("::1", 8000, "web")]
    default = cfg.pools["default"]
    assert default.backends == (Backend("127.0.0.1", 9001), Backend("127.0.0.1", 9002, weight=2, name="b"))
    web = cfg.pools["web"]
    assert web.algorithm == "leastconn" and web.retries == 1 and web.connect_timeout == 2.0
    assert web.backends == (Backend("::1", 9003, max_conns=10, backup=True),)
    assert (web.health.kind, web.health.path, web.health.interval, web.health.rise, web.health.fall) == (
        "http", "/health", 0.5, 1, 2)
    assert (cfg.timeouts.connect, cfg.timeouts.idle, cfg.timeouts.drain) == (2.0, 60.0, 0.0)
    assert (cfg.high_water, cfg.low_water) == (65536, 1024)


def test_missing_file_message() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("/nope.lua")
    assert str(info.value) == "cannot open /nope.lua: No such file or directory"


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "c.lua"
    path.write_text('listenPort = 1 backendAddress = "127.0.0.1" backendPort = 2\n')
    assert load_config(str(path)).path == str(path)


def test_lua_syntax_error_names_file_and_line() -> None:
    err = fails('listenPort = 8000\nbackendAddress = = "x"\n')
    assert str(err).startswith("/etc/rsp/test.lua:2:")


def test_wrong_type_names_line_and_key() -> None:
    err = fails('backendAddress = "127.0.0.1"\nlistenPort = {}\nbackendPort = 9000\n')
    assert str(err) == "/etc/rsp/test.lua:2: listenPort must be a string or number"
    assert err.key == "listenPort" and err.line == 2


def test_unknown_top_level_key_is_an_error() -> None:
    err = fails('listenPort = 8000\nbackendAddress = "127.0.0.1"\nbackendPort = 9000\nlistenPrt = 1\n')
    assert "unknown key 'listenPrt'" in str(err) and err.line == 4


def test_unknown_nested_key_names_the_path() -> None:
    err = fails('listen = {{ port = 80, adress = "x" }}\nbackends = {"127.0.0.1:1"}')
    assert "unknown key 'adress' in listen[1]" in str(err) and err.line == 1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('listenPort = 70000 backendAddress = "a" backendPort = 1', "listenPort must be between 1 and 65535"),
        ('listenPort = "http" backendAddress = "a" backendPort = 1', "listenPort must be a port number"),
        ('listenPort = 1 backendAddress = "a"', "backendPort is missing"),
        ('backends = {"127.0.0.1"}\nlisten = {{port = 1}}', "must look like 'host:port'"),
        ('backends = {}\nlisten = {{port = 1}}', "backends is empty"),
        ('backends = {"a:1"}\nlisten = {{port = 1, pool = "web"}}', "names pool 'web', which is not defined"),
        ('backends = {"a:1"}\nlisten = {{port = 1, mode = "udp"}}', "listen[1].mode must be one of tcp, http"),
        ('backends = {"a:1"}', "no listener"),
        ('listen = {{port = 1}}', "no backend"),
        ('backends = {"a:1"}\nlisten = {{port = 1}}\ntimeouts = {idle = -1}', "timeouts.idle must be above 0"),
        ('backends = {"a:1"}\nlisten = {{port = 1}}\nbuffer = {high_water = 2048, low_water = 4096}',
         "low_water must be below"),
        ('pools = {p = {backends = {"a:1"}, algorithm = "rr"}}\nlisten = {{port = 1, pool = "p"}}',
         "pools.p.algorithm must be one of"),
        ('pools = {p = {backends = {"a:1"}, algorithm = "hash", hash_key = "header"}}\nlisten = {{port=1, pool="p"}}',
         "hash_name is needed"),
        ('backends = {{address = "a:1", weight = "x"}}\nlisten = {{port = 1}}', "weight must be an integer"),
        ('backends = {"bad host:1"}\nlisten = {{port = 1}}', "neither an IP address nor a host name"),
    ],
)
def test_validation_errors(source: str, message: str) -> None:
    assert message in str(fails(source))


def test_trusted_proxies_are_addresses_and_cidrs_and_a_bad_one_names_its_line_and_key() -> None:
    base = 'backends = {"a:1"}\nlisten = {{port = 1, mode = "http"}}\n'
    config = parse_config(base + 'http = { trusted_proxies = { "10.1.2.3/8", "::1" } }\n', "/etc/rsp/test.lua")
    assert config.http.trusted_proxies == ("10.1.2.3/8", "::1")  # as written (host bits allowed)
    err = fails(base + 'http = { trusted_proxies = { "10.0.0.0/8",\n  "proxy.example" } }\n')
    assert str(err) == "/etc/rsp/test.lua:4: http.trusted_proxies[2] is not an address or CIDR: 'proxy.example'"
    assert (err.key, err.line) == ("http.trusted_proxies[2]", 4)


def test_infinite_loop_is_stopped() -> None:
    err = fails("while true do end")
    assert "instruction budget" in str(err) and str(err).startswith("/etc/rsp/test.lua:1:")


def test_endless_allocation_is_stopped() -> None:
    err = fails("t = {} i = 0 while true do i = i + 1 t[i] = {i} end")
    assert "memory limit" in str(err)


def test_no_standard_library() -> None:
    assert "global 'io'" in str(fails('x = io.open("/etc/passwd")'))
    assert "global 'os'" in str(fails('os.execute("true")'))
    assert "global 'require'" in str(fails('require("socket")'))


def test_python_bridge_is_not_reachable() -> None:
    # lupa registers a `python` global by default; the sandbox must not expose it.
    assert "unknown key" not in str(fails('x = python.builtins.open("/etc/passwd")'))


# -- route_store (issue 14) ------------------------------------------------------------------------------

ROUTE_STORE_BASE = ('listen = { { port = 8080, mode = "http", pool = "web" } }\n'
                    'pools = { web = { backends = { "127.0.0.1:9000" } } }\n')


def test_route_store_section() -> None:
    config = parse_config(ROUTE_STORE_BASE + 'route_store = { url = "redis://10.0.0.5:6379/2", template = "web",'
                          ' ttl = 2, missing_status = 502 }\n', "t.lua")
    store = config.route_store
    assert store is not None and store.url == "redis://10.0.0.5:6379/2" and store.template == "web"
    assert store.ttl == 2.0 and store.missing_status == 502 and store.prefix == "hostnames:" and store.default
    assert parse_config(ROUTE_STORE_BASE, "t.lua").route_store is None


@pytest.mark.parametrize(("entry", "key", "message"), [
    ('{ template = "nope" }', "route_store.template", "not defined"),
    ('{ template = "web", url = "http://x" }', "route_store.url", "must start with"),
    ('{ template = "web", missing_status = 404 }', "route_store.missing_status", "502 or 503"),
    ('{ template = "web", ttl = 0 }', "route_store.ttl", "above 0"),
    ('{ template = "web", tll = 1 }', "route_store.tll", "unknown key"),
])
def test_route_store_errors_name_the_key(entry: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(ROUTE_STORE_BASE + f"route_store = {entry}\n", "t.lua")
    assert info.value.key == key and message in info.value.message and info.value.line == 3


def test_route_store_needs_an_http_listener() -> None:
    source = ROUTE_STORE_BASE.replace('mode = "http", ', "") + 'route_store = { template = "web" }\n'
    with pytest.raises(ConfigError) as info:
        parse_config(source, "t.lua")
    assert info.value.key == "route_store" and "no listener" in info.value.message
