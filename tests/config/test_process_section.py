"""`workers`, `error_log` and `timeouts.reload_grace`: defaults, values, errors naming line and key."""

from __future__ import annotations

import pytest

from rsp.config.lua_loader import parse_config
from rsp.config.process_section import default_workers
from rsp.errors import ConfigError

BASE = 'listen = { { address = "127.0.0.1", port = 8080 } }\nbackends = { "127.0.0.1:9000" }\n'


def test_defaults_one_worker_per_core() -> None:
    config = parse_config(BASE, "rsp.lua")
    assert config.process.workers == default_workers() >= 1
    assert config.process.error_log == ""
    assert config.timeouts.reload_grace == 30.0


def test_values() -> None:
    config = parse_config(BASE + 'workers = 1\nerror_log = "/var/log/rsp/error.log"\n'
                          "timeouts = { reload_grace = 5 }\n", "rsp.lua")
    assert config.process.workers == 1
    assert config.process.error_log == "/var/log/rsp/error.log"
    assert config.timeouts.reload_grace == 5.0


@pytest.mark.parametrize(("line", "key"), [("workers = 0", "workers"), ("workers = 1000", "workers"),
                                           ('workers = "two"', "workers"), ("error_log = 3", "error_log"),
                                           ("timeouts = { reload_grace = -1 }", "timeouts.reload_grace")])
def test_errors_name_line_and_key(line: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + line + "\n", "rsp.lua")
    assert info.value.key == key
    assert info.value.line == 3
