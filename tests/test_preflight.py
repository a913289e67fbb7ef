"""rsp.preflight in process: the admin socket's path checks, and that nothing is left behind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rsp.config.lua_loader import parse_config
from rsp.errors import ConfigError
from rsp.preflight import UNIX_PATH_MAX, check_startable
from support.rsp_process import free_port


def config_with_admin(admin: str) -> str:
    return f'listenAddress = "127.0.0.1"\nlistenPort = {free_port()}\nbackendAddress = "127.0.0.1"\n' \
           f'backendPort = 9000\nadmin_socket = "{admin}"\n'


def test_an_admin_socket_path_too_long_for_a_unix_socket(tmp_path: Path) -> None:
    admin = str(tmp_path / ("s" * UNIX_PATH_MAX))
    with pytest.raises(ConfigError, match="longer than a Unix socket path may be") as info:
        check_startable(parse_config(config_with_admin(admin), "c.lua"))
    assert (info.value.line, info.value.key) == (5, "admin_socket")


def test_an_admin_socket_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        check_startable(parse_config(config_with_admin(str(tmp_path)), "c.lua"))


def test_a_running_rsps_socket_at_the_path_is_left_alone(tmp_path: Path) -> None:
    admin = tmp_path / "admin.sock"
    with socket.socket(socket.AF_UNIX) as running:
        running.bind(str(admin))
        inode = admin.stat().st_ino
        check_startable(parse_config(config_with_admin(str(admin)), "c.lua"))
        assert admin.stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["admin.sock"]


def test_a_pid_file_in_a_missing_directory_is_named_with_its_line(tmp_path: Path) -> None:
    source = (f'listenAddress = "127.0.0.1"\nlistenPort = {free_port()}\nbackendAddress = "127.0.0.1"\n'
              f'backendPort = 9000\npid_file = "{tmp_path / "none" / "rsp.pid"}"\n')
    with pytest.raises(ConfigError) as info:
        check_startable(parse_config(source, "c.lua"))
    assert (info.value.line, info.value.key) == (5, "pid_file")
    missing = tmp_path / "none" / "rsp.pid"
    assert str(info.value) == f"c.lua:5: pid_file: cannot write {missing}: No such file or directory"
    writable = source.replace(str(tmp_path / "none" / "rsp.pid"), str(tmp_path / "rsp.pid"))
    check_startable(parse_config(writable, "c.lua"))
    assert list(tmp_path.iterdir()) == []  # the probe beside it is removed
