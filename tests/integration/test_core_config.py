"""rsp's command line as a black box: config errors, --check, the original config forms, start-up output.

Error lines may carry the log timestamp prefix; the text after it is checked exactly.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.backends import EchoBackend
from support.client import echo_roundtrip, request
from support.rsp_process import LOG_LINE_RE, OFFLINE, STARTED_RE, RspProcess, legacy_config, run_cli

Run = Callable[..., RspProcess]

# "within a few seconds": rsp's own limits must stop a runaway config well before the test's guards.
RUNAWAY_CONFIG_DEADLINE = 10.0
# A lookup with no network fails at once; this bounds Python's start-up and lupa's import on a loaded machine.
RESOLVE_FAILS_WITHIN = 10.0


def _error_line(result_stderr_lines: list[str]) -> str:
    """The single error line, without an optional log timestamp prefix."""
    assert len(result_stderr_lines) == 1, f"expected one line on stderr, got {result_stderr_lines!r}"
    return LOG_LINE_RE.sub("", result_stderr_lines[0])


def _write(tmp_path: Path, text: str, name: str = "rsp.lua") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.lua"
    result = run_cli(str(missing))
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert _error_line(result.stderr_lines) == (
        f"rsp: cannot open {missing}: No such file or directory"
    )


def test_lua_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'listenPort = 8000\nbackendAddress = = "127.0.0.1"\nbackendPort = 9000\n')
    result = run_cli(str(path))
    assert result.returncode == 1, result
    line = _error_line(result.stderr_lines)
    assert line.startswith("rsp: "), line
    assert f"{path}:2:" in line, line


def test_listen_port_of_wrong_type(tmp_path: Path) -> None:
    path = _write(tmp_path, 'backendAddress = "127.0.0.1"\nlistenPort = { 8000 }\nbackendPort = 9000\n')
    result = run_cli(str(path))
    assert result.returncode == 1, result
    assert _error_line(result.stderr_lines) == (
        f"rsp: {path}:2: listenPort must be a string or number"
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = _write(tmp_path, 'listenPort = 8000\nbackendAddress = "127.0.0.1"\nlistenPrt = 8001\nbackendPort = 9000\n')
    result = run_cli(str(path))
    assert result.returncode == 1, result
    line = _error_line(result.stderr_lines)
    assert line.startswith(f"rsp: {path}:3: listenPrt: unknown key 'listenPrt'"), line


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("listenPort = 8000\nwhile true do end\n", id="infinite-loop"),
        pytest.param("t = {} ; i = 0 ; while true do i = i + 1; t[i] = i end\n", id="table-growth"),
        pytest.param('s = "x" ; while true do s = s .. s end\n', id="string-doubling"),
    ],
)
def test_runaway_config_stops_with_an_error(tmp_path: Path, source: str) -> None:
    path = _write(tmp_path, source)
    result = run_cli(str(path), timeout=RUNAWAY_CONFIG_DEADLINE + 10.0)
    assert result.killed == "", f"the test had to kill rsp: {result.killed}"
    assert result.returncode == 1, result
    assert result.elapsed < RUNAWAY_CONFIG_DEADLINE, f"took {result.elapsed:.1f} s to stop"
    line = _error_line(result.stderr_lines)
    assert line.startswith("rsp: "), line
    # The full path is checked by the syntax-error test; here it is enough that the file is named.
    assert path.name in line, line


def test_check_accepts_a_valid_config(tmp_path: Path, free_port: Callable[..., int]) -> None:
    path = _write(tmp_path, legacy_config(free_port(), 9000))
    result = run_cli("--check", str(path))
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [f"configuration file {path} test is successful"]
    assert result.stderr == ""


def test_check_binds_and_resolves_a_rich_config_and_leaves_nothing_behind(
        tmp_path: Path, free_port: Callable[..., int]) -> None:
    ports = [free_port(), free_port()]
    admin = tmp_path / "admin.sock"
    path = _write(tmp_path, f"""listen = {{
  {{ address = "127.0.0.1", port = {ports[0]} }},
  {{ address = "127.0.0.1", port = {ports[1]}, mode = "http" }},
}}
backends = {{ "127.0.0.1:9000", {{ address = "localhost", port = 9001 }} }}
admin_socket = "{admin}"
""")
    result = run_cli("--check", str(path))
    assert result.returncode == 0, result
    assert "test is successful" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rsp.lua"]  # no probe socket, no admin socket
    for port in ports:  # and the ports are free again
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_check_fails_on_a_listen_port_in_use_naming_file_line_and_key(
        tmp_path: Path, free_port: Callable[..., int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        path = _write(tmp_path, f"""backends = {{ "127.0.0.1:9000" }}
listen = {{
  {{ address = "127.0.0.1", port = {free_port()} }},
  {{ address = "127.0.0.1",
    port = {port} }},
}}
""")
        result = run_cli("--check", str(path))
    assert result.returncode == 1, result
    assert "test is successful" not in result.stdout
    assert _error_line(result.stderr_lines) == (
        f"rsp: {path}:4: listen[2]: cannot listen on 127.0.0.1:{port}: address already in use")


def test_check_fails_on_two_listeners_that_start_could_not_bind_together(
        tmp_path: Path, free_port: Callable[..., int]) -> None:
    port = free_port()
    path = _write(tmp_path, f"""backends = {{ "127.0.0.1:9000" }}
listen = {{
  {{ address = "0.0.0.0", port = {port} }},
  {{ address = "127.0.0.1", port = {port} }},
}}
""")
    result = run_cli("--check", str(path))
    assert result.returncode == 1, result
    assert _error_line(result.stderr_lines).startswith(f"rsp: {path}:4: listen[2]: "), result.stderr


@pytest.mark.root
def test_check_fails_on_a_backend_name_that_does_not_resolve(tmp_path: Path, free_port: Callable[..., int]) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the lookup runs in a network namespace so that no DNS query leaves the machine")
    path = _write(tmp_path, f"""listen = {{ {{ address = "127.0.0.1", port = {free_port()} }} }}
timeouts = {{ connect = 5 }}
log_level = "info"
backends = {{
  "127.0.0.1:9000",
  {{ address = "backend.invalid", port = 9001 }},
}}
""")
    result = run_cli("--check", str(path), wrapper=OFFLINE)
    assert result.returncode == 1, result
    line = _error_line(result.stderr_lines)
    assert line.startswith(
        f"rsp: {path}:6: backends[2]: cannot resolve backend backend.invalid:9001: "), line
    assert result.elapsed < RESOLVE_FAILS_WITHIN, result.elapsed


def test_check_fails_on_an_access_log_in_a_missing_directory(tmp_path: Path, free_port: Callable[..., int]) -> None:
    log = tmp_path / "nodir" / "access.log"
    path = _write(tmp_path, f"""listen = {{ {{ address = "127.0.0.1", port = {free_port()}, mode = "http" }} }}
backends = {{ "127.0.0.1:9000" }}
http = {{
  access_log = "combined",
  access_log_path = "{log}",
}}
""")
    result = run_cli("--check", str(path))
    assert result.returncode == 1, result
    assert _error_line(result.stderr_lines) == (f"rsp: {path}:5: http.access_log_path: cannot open "
                                                f"{log}: No such file or directory")


def test_check_fails_on_an_admin_socket_in_a_missing_directory(tmp_path: Path, free_port: Callable[..., int]) -> None:
    path = _write(tmp_path, legacy_config(free_port(), 9000, extra=f'admin_socket = "{tmp_path}/nodir/rsp.sock"'))
    result = run_cli("--check", str(path))
    assert result.returncode == 1, result
    assert _error_line(result.stderr_lines) == (f"rsp: {path}:5: admin_socket: cannot open admin "
                                                f"socket {tmp_path}/nodir/rsp.sock: No such file or directory")


def test_check_rejects_an_invalid_config(tmp_path: Path) -> None:
    path = _write(tmp_path, 'listenPort = 8000\nbackendAddress = "127.0.0.1"\nbackendPort = true\n')
    result = run_cli("--check", str(path))
    assert result.returncode == 1, result
    assert "test is successful" not in result.stdout
    line = _error_line(result.stderr_lines)
    assert line.startswith(f"rsp: {path}:3: "), line
    assert "backendPort" in line


def test_check_all_three_original_globals_on_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'listenPort = 8000 backendAddress = "127.0.0.1" backendPort = 9000\n')
    result = run_cli("--check", str(path))
    assert result.returncode == 0, result
    assert f"configuration file {path} test is successful" in result.stdout


def test_original_globals_on_one_line_relay(run_rsp: Run, echo_backend: EchoBackend,
                                            free_port: Callable[..., int]) -> None:
    port = free_port()
    rsp = run_rsp(f'listenAddress = "127.0.0.1" listenPort = {port} backendAddress = "127.0.0.1" '
                  f"backendPort = {echo_backend.port}\nworkers = 2\n")
    assert rsp.ports == [port]
    assert echo_roundtrip(port, b"one line\n") == b"one line\n"


@pytest.mark.parametrize("as_string", [False, True], ids=["numbers", "strings"])
def test_ports_as_numbers_or_strings(run_rsp: Run, echo_backend: EchoBackend,
                                     free_port: Callable[..., int], as_string: bool) -> None:
    port = free_port()
    listen: int | str = f'"{port}"' if as_string else port
    backend: int | str = f'"{echo_backend.port}"' if as_string else echo_backend.port
    rsp = run_rsp(legacy_config(listen, backend))
    assert rsp.ports == [port]
    assert request(port, b"typed\n") == b"typed\n"


def test_startup_line_and_log_line_format(run_rsp: Run, echo_backend: EchoBackend,
                                          free_port: Callable[..., int]) -> None:
    port = free_port()
    before = datetime.now(UTC)
    rsp = run_rsp(legacy_config(port, echo_backend.port))
    after = datetime.now(UTC)
    assert len(rsp.stdout_lines) == 1, rsp.stdout_lines
    # The log lines' timestamp (local time, microseconds, UTC offset), then two spaces after "Started."
    match = re.fullmatch(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} [+-]\d{4})\] Started\.  Listening on port (\d+)\.",
                         rsp.stdout_lines[0])
    assert match, rsp.stdout_lines[0]
    assert int(match.group(2)) == port
    stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f %z")
    assert before - timedelta(seconds=1) <= stamp <= after + timedelta(seconds=1)
    assert request(port, b"x\n") == b"x\n"
    assert rsp.stop() == 0
    bad = [line for line in rsp.stderr_lines if not LOG_LINE_RE.match(line)]
    assert bad == [], bad


def test_port_in_use_exits_1_with_a_clear_message(tmp_path: Path, free_port: Callable[..., int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        path = _write(tmp_path, legacy_config(port, free_port()))
        result = run_cli(str(path), timeout=15.0)
    assert result.killed == "", result.killed
    assert result.returncode == 1, result
    assert not STARTED_RE.search(result.stdout)
    assert any(f"cannot listen on 127.0.0.1:{port}: address already in use" in line
               for line in result.stderr_lines), result.stderr


def test_version_and_help_exit_zero() -> None:
    version = run_cli("--version")
    assert version.returncode == 0, version
    assert "0.1.0" in version.stdout + version.stderr
    usage = run_cli("--help")
    assert usage.returncode == 0, usage
    assert "--check" in usage.stdout
