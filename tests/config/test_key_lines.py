"""The line of every config entry (rsp.config.key_lines), and the loader's errors that use it."""

from __future__ import annotations

import pytest

from rsp.config.key_lines import key_lines, line_of
from rsp.config.lua_loader import parse_config
from rsp.errors import ConfigError

CONFIG = '''\
-- a comment with { braces } and key = "value" inside
listenPort = 8000 backendAddress = "127.0.0.1" backendPort = 9000
listen = {
  { address = "127.0.0.1", port = 8000 },  -- listen[1]
  {
    address = "::1",
    port = 8001,
  },
}
pools = {
  web = {
    backends = { "127.0.0.1:9001", [[a long
string]], { address = "h", port = 1, weight = 2 } },
    health = { kind = "http", f = function(a, b) if a then return 1, 2 end end, path = "/h" },
  },
  ["api"] = { backends = { "a:1" } },
}
local unused = { ignored = 1 }
for i = 1, 2 do counter = i end
http = { trusted_proxies = { "10.0.0.0/8",
  "::1/128" } }
'''


def test_each_entry_has_the_line_it_is_written_on() -> None:
    lines = key_lines(CONFIG)
    assert lines["listenPort"] == lines["backendAddress"] == lines["backendPort"] == 2
    assert lines["listen"] == 3
    assert lines["listen[1]"] == lines["listen[1].port"] == 4
    assert (lines["listen[2]"], lines["listen[2].address"], lines["listen[2].port"]) == (5, 6, 7)
    assert (lines["pools"], lines["pools.web"], lines["pools.web.backends"]) == (10, 11, 12)
    assert lines["pools.web.backends[1]"] == lines["pools.web.backends[2]"] == 12
    assert lines["pools.web.backends[3]"] == lines["pools.web.backends[3].weight"] == 13  # after a long string
    assert lines["pools.web.health.path"] == 14  # past a function whose body has commas
    assert lines["pools.api"] == lines["pools.api.backends[1]"] == 16
    assert lines["counter"] == 19
    assert (lines["http.trusted_proxies[1]"], lines["http.trusted_proxies[2]"]) == (20, 21)
    assert "unused" not in lines and "unused.ignored" not in lines and "ignored" not in lines
    assert not any(key.startswith(("a comment", "key")) for key in lines)


def test_a_key_without_a_line_takes_its_nearest_enclosing_entrys() -> None:
    lines = key_lines(CONFIG)
    assert line_of(lines, "listen[2].pool") == 5  # missing key: its table's line
    assert line_of(lines, "pools.web.health.nosuch") == 14
    assert line_of(lines, "nothing.here") is None


def fails(source: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(source, "/etc/rsp/test.lua")
    return info.value


def test_an_unknown_key_in_a_multi_line_table_is_reported_at_its_own_line() -> None:
    err = fails('backends = { "127.0.0.1:9000" }\n'
                "listen = {\n"
                "  {\n"
                "    adress = '127.0.0.1',\n"
                "    port = 8000,\n"
                "  },\n"
                "}\n")
    assert err.line == 4, str(err)  # the typo's line (the statement ends on line 7)
    assert str(err).startswith("/etc/rsp/test.lua:4: listen[1].adress: unknown key 'adress' in listen[1]")


def test_a_typo_on_the_third_line_of_a_table() -> None:
    err = fails("backends = { '127.0.0.1:9000' }\n"
                "listenPort = 8000\n"
                "timeouts = {\n"
                "  connect = 5,\n"
                "  idel = 300,\n"
                "  drain = 30,\n"
                "}\n")
    assert (err.line, err.key) == (5, "timeouts.idel"), str(err)


def test_a_bad_value_deep_in_a_pool_names_its_line_and_path() -> None:
    err = fails("listen = { { port = 8000, pool = 'web' } }\n"
                "pools = {\n"
                "  web = {\n"
                "    backends = {\n"
                "      { address = '127.0.0.1', port = 9001 },\n"
                "      { address = '127.0.0.1', port = 9002,\n"
                "        weight = 999 },\n"
                "    },\n"
                "  },\n"
                "}\n")
    assert (err.line, err.key) == (7, "pools.web.backends[2].weight"), str(err)


def test_loaded_entries_carry_their_key_and_the_config_its_lines() -> None:
    config = parse_config("listen = {\n  { port = 8000 },\n  { port = 8001 },\n}\n"
                          "backends = {\n  '127.0.0.1:9000',\n}\n", "x.lua")
    assert [lst.key for lst in config.listeners] == ["listen[1]", "listen[2]"]
    assert config.pools["default"].backends[0].key == "backends[1]"
    assert line_of(config.lines, "listen[2]") == 3 and line_of(config.lines, "backends[1]") == 6
    legacy = parse_config("listenPort = 8000\nbackendAddress = '127.0.0.1'\nbackendPort = 9000\n", "y.lua")
    assert legacy.listeners[0].key == "listenPort"
    assert legacy.pools["default"].backends[0].key == "backendAddress"
