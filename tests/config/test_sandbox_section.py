"""The sandbox keys: apps, forward, forward_mode, sandbox_network, sandbox_instance, sandbox_runtime_dir."""

from __future__ import annotations

import pytest

from rsp.config.lua_loader import parse_config
from rsp.config.model import DEFAULT_SANDBOX_NETWORK, Forward
from rsp.errors import ConfigError

BASE = """
listen = { { port = 8000, pool = "web", mode = "http" } }
apps = {
  two = { command = { "python3", "app.py" }, port = 8080, pool = "web", env = { GREETING = "hi", N = 3 } },
  one = { command = { "python3", "app.py" }, port = 8080, pool = "web", user = "nobody", dir = "/srv/one" },
}
"""


def fails(source: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(source, "/etc/rsp/apps.lua")
    return info.value


def test_apps_are_read_sorted_by_name_and_their_pool_is_created_empty() -> None:
    cfg = parse_config(BASE, "a.lua")
    assert [app.name for app in cfg.sandbox.apps] == ["one", "two"]
    one, two = cfg.sandbox.apps
    assert one.command == ("python3", "app.py") and one.user == "nobody" and one.dir == "/srv/one"
    assert one.sandbox and one.hostname == "one" and one.key == "apps.one"
    assert dict(two.env) == {"GREETING": "hi", "N": "3"}
    assert cfg.pools["web"].backends == ()
    assert cfg.sandbox.network == DEFAULT_SANDBOX_NETWORK and cfg.sandbox.forward_mode == "relay"


def test_a_relayed_forward_is_a_listener_on_its_own_pool() -> None:
    cfg = parse_config(BASE + 'forward = { [6001] = "two:8080", [6000] = "one:8080" }', "a.lua")
    assert cfg.sandbox.forwards == (Forward(6000, "one", 8080), Forward(6001, "two", 8080))
    assert [(lst.port, lst.pool, lst.mode) for lst in cfg.listeners[1:]] == [
        (6000, "forward:6000", "tcp"), (6001, "forward:6001", "tcp")]
    assert cfg.pools["forward:6000"].backends == ()


def test_nat_forwards_add_no_listener() -> None:
    cfg = parse_config(BASE + 'forward = { [6000] = "one:8080" }\nforward_mode = "nat"', "a.lua")
    assert len(cfg.listeners) == 1 and "forward:6000" not in cfg.pools


@pytest.mark.parametrize(("extra", "key", "words"), [
    ('forward = { [6000] = "three:8080" }', "forward[6000]", "must name an app"),
    ('forward = { [6000] = "one" }', "forward[6000]", "must name an app"),
    ('forward = { [70000] = "one:8080" }', "forward[70000]", "between 1 and 65535"),
    ('sandbox_network = "10.0.0.0/30"', "sandbox_network", "too small"),
    ('sandbox_network = "banana"', "sandbox_network", "IPv4 network"),
    ('sandbox_instance = "Too-Long"', "sandbox_instance", "1 to 6"),
    ('forward_mode = "iptables"', "forward_mode", "relay, nat"),
])
def test_bad_sandbox_keys_name_their_key(extra: str, key: str, words: str) -> None:
    err = fails(BASE + extra)
    assert err.key == key and words in err.message


@pytest.mark.parametrize(("app", "key", "words"), [
    ('one = { port = 8080 }', "apps.one.command", "missing"),
    ('one = { command = {}, port = 8080 }', "apps.one.command", "empty"),
    ('one = { command = { "x" } }', "apps.one.port", "missing"),
    ('one = { command = { "x" }, port = 8080, colour = "red" }', "apps.one.colour", "unknown key"),
    ('one = { command = { "x" }, port = 8080, hostname = "a b" }', "apps.one.hostname", "not a valid host name"),
    ('["One!"] = { command = { "x" }, port = 8080 }', "apps", "app names"),
    ('one = { command = { "x" }, port = 8080, log_max_bytes = 10 }', "apps.one.log_max_bytes", "at least"),
])
def test_bad_app_entries_name_their_key(app: str, key: str, words: str) -> None:
    err = fails(f"listen = {{ {{ port = 8000 }} }}\nbackends = {{ '127.0.0.1:1' }}\napps = {{ {app} }}")
    assert err.key == key and words in err.message
    assert err.line == 3


def test_two_unsandboxed_apps_on_one_port_are_refused() -> None:
    err = fails("""listen = { { port = 8000, pool = "web" } }
apps = { a = { command = { "x" }, port = 9000, pool = "web", sandbox = false },
         b = { command = { "x" }, port = 9000, pool = "web", sandbox = false } }""")
    assert err.key == "apps.b.port" and "distinct ports" in err.message
