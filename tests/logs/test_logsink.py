"""LogSink never blocks: a stuck pipe costs dropped lines (counted, then reported), a rotated file is
reopened by name."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from rsp import logsink
from rsp.logsink import LogSink, reopen_all


def test_a_full_pipe_drops_lines_without_blocking_then_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logsink, "MAX_PENDING_BYTES", 4096)
    read_end, write_end = os.pipe()
    saved = os.dup(1)
    try:
        os.dup2(write_end, 1)  # the sink writes to "stdout", which is this pipe nobody reads yet
        sink = LogSink("", 1)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    line = "x" * 99 + "\n"
    began = time.monotonic()
    for _ in range(5000):  # 500 KB: far more than a pipe (64 KiB) plus the pending bound hold
        sink.write(line)
    assert time.monotonic() - began < 5.0  # never waited for the reader
    assert sink.dropped > 0
    dropped = sink.dropped
    os.set_blocking(read_end, False)
    received = bytearray()
    for _ in range(100):
        try:
            chunk = os.read(read_end, 1 << 20)
        except BlockingIOError:
            chunk = b""
        received += chunk
        sink.flush()
        if b"dropped" in received:
            break
    text = received.decode()
    assert f"{dropped} log line(s) dropped" in text
    # Whole lines only: nothing was cut in the middle.
    assert all(part == "x" * 99 for part in text.splitlines() if not part.startswith("rsp:"))
    sink.close()
    os.close(read_end)
    os.close(write_end)


def test_a_socket_destination_is_written_with_dontwait() -> None:
    ours, theirs = socket.socketpair()
    saved = os.dup(1)
    try:
        os.dup2(theirs.fileno(), 1)
        sink = LogSink("", 1)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    sink.write("hello\n")
    assert ours.recv(100) == b"hello\n"
    sink.close()
    ours.close()
    theirs.close()


def test_reopen_follows_the_name_after_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    sink = LogSink(str(path), 1)
    sink.write("one\n")
    path.rename(tmp_path / "access.log.1")
    sink.write("two\n")  # still the old file, as logrotate expects until the signal
    assert reopen_all() == []
    sink.write("three\n")
    sink.close()
    assert (tmp_path / "access.log.1").read_text() == "one\ntwo\n"
    assert path.read_text() == "three\n"


def test_reopen_reports_a_file_that_cannot_be_opened(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    sink = LogSink(str(directory / "error.log"), 2)
    (directory / "error.log").unlink()
    directory.rmdir()
    failures = reopen_all()
    assert any("error.log" in failure for failure in failures)
    sink.close()
