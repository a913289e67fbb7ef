"""`rsp --check` on a cache's path: the directory must exist and be writable, the file (if any) writable."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsp.config.lua_loader import parse_config
from rsp.errors import ConfigError
from rsp.preflight import check_resolvable_and_files


def config_with(path: str) -> str:
    return ('listen = { { address = "127.0.0.1", port = 8080, mode = "http", cache = "pages" } }\n'
            'backends = { "127.0.0.1:9000" }\n'
            f'caches = {{ pages = {{\n  path = "{path}" }} }}\n')


def test_a_writable_directory_passes_and_nothing_is_created(tmp_path: Path) -> None:
    check_resolvable_and_files(parse_config(config_with(f"{tmp_path}/c.lmdb"), "rsp.lua"))
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_names_the_key_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        check_resolvable_and_files(parse_config(config_with(f"{tmp_path}/nope/c.lmdb"), "rsp.lua"))
    assert (info.value.key, info.value.line) == ("caches.pages.path", 4)
    assert "does not exist" in info.value.message


def test_a_directory_in_place_of_the_file(tmp_path: Path) -> None:
    (tmp_path / "c.lmdb").mkdir()
    with pytest.raises(ConfigError, match="not a writable file"):
        check_resolvable_and_files(parse_config(config_with(f"{tmp_path}/c.lmdb"), "rsp.lua"))
