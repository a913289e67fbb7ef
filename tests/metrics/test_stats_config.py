"""The `stats` config section: defaults, validation, errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsp.config.lua_loader import load_config
from rsp.config.model import DEFAULT_STATS_PORT, DEFAULT_STATS_REFRESH, Config
from rsp.errors import ConfigError

BASE = 'listen = { { address = "127.0.0.1", port = 8080, mode = "http" } }\nbackends = { "127.0.0.1:9000" }\n'


def load(tmp_path: Path, stats: str) -> Config:
    path = tmp_path / "rsp.lua"
    path.write_text(BASE + stats)
    return load_config(str(path))


def test_absent_means_off(tmp_path: Path) -> None:
    assert load(tmp_path, "").stats is None


def test_defaults(tmp_path: Path) -> None:
    stats = load(tmp_path, "stats = {}\n").stats
    assert stats is not None
    assert (stats.host, stats.port, stats.refresh) == ("127.0.0.1", DEFAULT_STATS_PORT, DEFAULT_STATS_REFRESH)


def test_values(tmp_path: Path) -> None:
    stats = load(tmp_path, 'stats = { listen = "[::1]:9200", refresh = 5 }\n').stats
    assert stats is not None
    assert (stats.host, stats.port, stats.refresh) == ("::1", 9200, 5.0)


@pytest.mark.parametrize(("text", "key", "message"), [
    ('stats = { listen = "nowhere" }', "stats.listen", "host:port"),
    ('stats = { listen = "127.0.0.1:70000" }', "stats.listen", "between 1 and 65535"),
    ("stats = { refresh = 0.1 }", "stats.refresh", "between"),
    ('stats = { refresh = "fast" }', "stats.refresh", "seconds"),
    ('stats = { lisen = "127.0.0.1:9100" }', "stats.lisen", "unknown key"),
    ('stats = "127.0.0.1:9100"', "stats", "must be a table"),
    ('stats = { listen = "127.0.0.1:8080" }', "stats.listen", "listener"),
])
def test_errors_name_the_key_and_line(tmp_path: Path, text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "\n" + text + "\n")
    err = info.value
    assert err.key == key
    assert message in str(err)
    assert err.line == 4
