"""rsp in HTTP mode, black box: the access log (combined and JSON, on stdout or in a file).

Access lines may be written in batches up to about a second after the response: every check waits for
them with a bound instead of reading once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.http_backends import HttpBackend, ReceivedRequest, Reply, describe
from support.http_client import HttpConn, get, http_config
from support.rsp_process import STARTED_RE, RspProcess, free_port
from support.waiting import wait_until

Start = Callable[..., Any]
Run = Callable[..., RspProcess]

LOG_WAIT = 5.0
# Apache/nginx "combined": %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"; %t is [10/Oct/2000:13:55:36 -0700]
COMBINED_TIME = r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]"


def access_lines(proc: RspProcess) -> list[str]:
    return [line for line in list(proc.stdout_lines) if not STARTED_RE.match(line)]


def wait_for_lines(source: Callable[[], list[str]], pattern: str, count: int = 1) -> list[re.Match[str]]:
    regex = re.compile(pattern)
    found: list[re.Match[str]] = []

    def check() -> bool:
        found[:] = [m for line in source() if (m := regex.search(line))]
        return len(found) >= count

    wait_until(check, LOG_WAIT)
    return found


def test_combined_access_log_on_stdout(start_backend: Start, run_rsp: Run) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        if req.target == "/missing":
            return Reply(404, "Not Found", body=b"no such thing\n")
        return describe("b")(req)

    backend = start_backend(HttpBackend, handler, name="b")
    rsp = run_rsp(http_config(free_port(), [backend.port], http={"access_log": "combined"}))
    with HttpConn(rsp.port) as conn:
        ok = conn.request("GET", "/logged?x=1", headers=[("User-Agent", "tester/1.0"),
                                                         ("Referer", "http://ref.example/")])
        missing = conn.request("GET", "/missing", headers=[("User-Agent", "tester/2.0")])
    assert ok.status == 200 and missing.status == 404
    first = wait_for_lines(lambda: access_lines(rsp), r'"GET /logged\?x=1 HTTP/1\.1"')
    second = wait_for_lines(lambda: access_lines(rsp), r'"GET /missing HTTP/1\.1"')
    assert len(first) == 1 and len(second) == 1, access_lines(rsp)
    line = first[0].string
    match = re.fullmatch(r'127\.0\.0\.1 - - ' + COMBINED_TIME
                         + r' "GET /logged\?x=1 HTTP/1\.1" 200 (\d+) "http://ref\.example/" "tester/1\.0"', line)
    assert match, f"not a combined log line: {line!r}"
    # %b is the size of the response body (headers excluded).
    assert int(match.group(1)) == len(ok.body), line
    line = second[0].string
    match = re.fullmatch(r'127\.0\.0\.1 - - ' + COMBINED_TIME
                         + r' "GET /missing HTTP/1\.1" 404 (\d+) "-" "tester/2\.0"', line)
    assert match, f"not a combined log line: {line!r}"
    assert int(match.group(1)) == len(missing.body), line


def test_json_access_log_on_stdout(start_backend: Start, run_rsp: Run) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        return Reply(body=b"slow answer\n", delay=0.3)

    backend = start_backend(HttpBackend, handler, name="b")
    rsp = run_rsp(http_config(free_port(), [backend.port], http={"access_log": "json"}))
    response = get(rsp.port, "/j?q=2", method="POST", body=b"12345")
    assert response.status == 200
    found = wait_for_lines(lambda: access_lines(rsp), r"^\{.*/j\?q=2")
    assert len(found) == 1, access_lines(rsp)
    record = json.loads(found[0].string)
    assert isinstance(record, dict)
    missing = {"client", "method", "target", "status", "bytes", "backend", "upstream_time", "total_time"} - set(record)
    assert not missing, f"keys missing from the JSON access line: {missing}; line {record!r}"
    assert record["client"] == "127.0.0.1", record
    assert record["method"] == "POST"
    assert record["target"] == "/j?q=2"
    assert record["status"] == 200
    assert isinstance(record["bytes"], int) and record["bytes"] >= len(response.body)
    assert f"127.0.0.1:{backend.port}" in str(record["backend"]), record
    upstream, total = record["upstream_time"], record["total_time"]
    assert isinstance(upstream, (int, float)) and isinstance(total, (int, float)), record
    # The backend took 0.3 s (whatever the unit, s or ms, that is >= 0.3) and the total includes it.
    assert upstream >= 0.3 and total >= upstream, record
    # Every stdout line after Started is one JSON object.
    for line in access_lines(rsp):
        assert isinstance(json.loads(line), dict), line


def test_access_log_to_a_file(start_backend: Start, run_rsp: Run, tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, name="b")
    log_path = tmp_path / "access.log"
    rsp = run_rsp(http_config(free_port(), [backend.port],
                              http={"access_log": "combined", "access_log_path": str(log_path)}))
    for i in range(3):
        assert get(rsp.port, f"/file{i}").status == 200

    def file_lines() -> list[str]:
        return log_path.read_text().splitlines() if log_path.exists() else []

    found = wait_for_lines(file_lines, r'"GET /file\d HTTP/1\.1" 200 \d+', count=3)
    assert len(found) == 3, file_lines()
    assert access_lines(rsp) == [], "access lines went to stdout although access_log_path is set"


@pytest.mark.parametrize(("log_format", "expected"), [("off", 0), ("combined", 1)])
def test_access_log_off_writes_nothing(start_backend: Start, run_rsp: Run, log_format: str, expected: int) -> None:
    """Read after rsp exited, when every batched line is out (the log is flushed at exit): no waiting for
    a batch that may or may not come. "combined" is the same run with a log: the count can fail."""
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(http_config(free_port(), [backend.port], http={"access_log": log_format}))
    assert get(rsp.port, "/quiet").status == 200
    assert rsp.stop() == 0
    assert len(access_lines(rsp)) == expected, access_lines(rsp)
