"""Run a function in a forked child (so that namespace changes never touch the test process)."""

from __future__ import annotations

import os
import select
import traceback
from collections.abc import Callable

# A child that does not finish in this time is killed: a test never hangs on a namespace bug.
CHILD_TIMEOUT_S = 20.0


def run_forked(body: Callable[[int], int]) -> tuple[int, bytes]:
    """Fork; the child runs body(write_fd) and exits with its return value. Returns (exit code, bytes written)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.close(read_fd)
            code = body(write_fd)
        except BaseException:
            os.write(write_fd, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], CHILD_TIMEOUT_S)
            if not ready:
                os.kill(pid, 9)
                break
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks)
