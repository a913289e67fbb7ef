"""Logs an operator can read (workers = 2, loopback): every worker line names its worker (`worker G.N:`,
worker N of generation G); no bare `stopped` line: a worker's says which worker, the retired generation's
end is one line, rsp's own end says `rsp stopped`; an access log line reaches its file within the stated
bound (one housekeeping tick, rsp.server.MAX_TICK) without any further traffic."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsp.server import MAX_TICK
from support.http_backends import HttpBackend
from support.http_client import get, http_config
from support.rsp_process import LOG_LINE_RE
from support.waiting import eventually

# The flush bound is MAX_TICK; a loaded 2-core machine may run the tick late by this much.
SCHEDULING_SLACK = 2.0


def test_worker_lines_name_their_worker_and_no_stopped_line_is_bare(
        run_rsp: Callable[..., Any], start_backend: Callable[..., Any], free_port: Callable[..., int],
        tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, name="a")
    access = tmp_path / "access.log"
    rsp = run_rsp(http_config(free_port(), [backend.port], http={"access_log": "combined",
                                                                "access_log_path": str(access)},
                              extra="workers = 2"))
    assert get(rsp.port).status == 200
    eventually(access.read_text, timeout=MAX_TICK + SCHEDULING_SLACK)  # flushed within the bound
    assert access.read_text().count('"GET / HTTP/1.1" 200') == 1, "the access line was not flushed in time"

    rsp.signal(signal.SIGHUP)
    assert rsp.wait_for_stderr(r"generation 1 stopped: its 2 worker\(s\) finished after the reload", 60)
    rsp.signal(signal.SIGTERM)
    assert rsp.wait(30) == 0
    messages = [LOG_LINE_RE.sub("", line) for line in rsp.stderr_lines if LOG_LINE_RE.match(line)]
    # What the workers say as they drain, each with its name.
    for name in ("worker 1.1", "worker 1.2"):
        assert f"{name}: reload received: no longer accepting; draining 0 connection(s) for up to 30 s" in messages
        assert f"{name}: stopped" in messages
    for name in ("worker 2.1", "worker 2.2"):
        assert f"{name}: SIGTERM received: no longer accepting; draining 0 connection(s) for up to 30 s" in messages
        assert f"{name}: stopped" in messages
    assert messages[-1].startswith("rsp stopped (master pid ") and "generation 2" in messages[-1]
    assert "stopped" not in messages
    assert not any(re.fullmatch(r"(\S+ )?stopped", m) for m in messages), messages
