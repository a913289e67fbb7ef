"""The module's syslog datagrams: format (RFC 3164 as glibc writes it), level filter, a missing daemon."""

from __future__ import annotations

import os
import socket
import syslog
import time
from pathlib import Path

import pytest

from rsp.pam.syslog_line import MAX_MESSAGE_BYTES, SyslogSender, format_line

WHEN = time.struct_time((2026, 3, 5, 9, 7, 3, 3, 64, 0))


def test_line_has_authpriv_priority_padded_day_ident_and_pid() -> None:
    line = format_line(syslog.LOG_ERR, "user bob: mount failed", pid=42, when=WHEN)
    assert line == b"<83>Mar  5 09:07:03 pam_unshare[42]: user bob: mount failed"


def test_a_message_is_one_line_and_bounded() -> None:
    assert b"\n" not in format_line(syslog.LOG_INFO, "a\nforged: line", pid=1, when=WHEN)
    assert len(format_line(syslog.LOG_INFO, "x" * 5000, pid=1, when=WHEN)) == MAX_MESSAGE_BYTES


def test_sender_filters_by_level(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as daemon:
        daemon.bind(str(path))
        daemon.settimeout(5)
        sender = SyslogSender(str(path), syslog.LOG_WARNING)
        sender.log(syslog.LOG_INFO, "not wanted")
        sender.log(syslog.LOG_ERR, "wanted")
        assert daemon.recv(4096).endswith(b": wanted")
        daemon.settimeout(0)
        try:
            extra = daemon.recv(4096)
        except BlockingIOError:
            extra = b""
        assert extra == b""


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_missing_daemon_loses_the_line_quietly(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A log failure never fails a login: no exception, nothing written to the login program's stdout or
    stderr, no descriptor left open, nothing created at the address; the next line reaches a daemon that has
    started since (the sender is not left broken)."""
    path = tmp_path / "log.sock"
    sender = SyslogSender(str(path), syslog.LOG_DEBUG)
    before = open_descriptors()
    sender.log(syslog.LOG_ERR, "nobody listens")  # raises nothing
    assert open_descriptors() == before
    assert not path.exists()
    assert capfd.readouterr() == ("", "")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as daemon:
        daemon.bind(str(path))
        daemon.settimeout(5)
        sender.log(syslog.LOG_ERR, "now someone does")
        assert daemon.recv(4096).endswith(b": now someone does")


def test_an_address_that_is_not_a_syslog_socket_loses_the_line_quietly(tmp_path: Path) -> None:
    sender = SyslogSender(str(tmp_path), syslog.LOG_DEBUG)  # a directory: sendto fails with an OSError
    before = open_descriptors()
    sender.log(syslog.LOG_ERR, "lost")
    assert open_descriptors() == before
