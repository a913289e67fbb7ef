"""rsp's command line as a black box: config errors, --check, the original config forms, start-up output.

Error lines may carry the log timestamp prefix; the text after it is checked exactly.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from support.backends import EchoBackend
from support.client import echo_roundtrip, request
from support.rsp_process import LOG_LINE_RE, STARTED_RE, RspProcess, legacy_config, run_cli

Run = Callable[..., RspProcess]

# "within a few seconds": rsp's own limits must stop a runaway config well before the test's guards.
RUNAWAY_CONFIG_DEADLINE = 10.0


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
        f"Error parsing config file: cannot open {missing}: No such file or directory"
    )


def test_lua_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'listenPort = 8000\nbackendAddress = = "127.0.0.1"\nbackendPort = 9000\n')
    result = run_cli(str(path))
    assert result.returncode == 1, result
    line = _error_line(result.stderr_lines)
    assert line.startswith("Error parsing config file: "), line
    assert f"{path}:2:" in line, line


def test_listen_port_of_wrong_type(tmp_path: Path) -> None:
    path = _write(tmp_path, 'backendAddress = "127.0.0.1"\nlistenPort = { 8000 }\nbackendPort = 9000\n')
    result = run_cli(str(path))
    assert result.returncode == 1, result
    assert _error_line(result.stderr_lines) == (
        f"Error parsing config file: {path}:2: listenPort must be a string or number"
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = _write(tmp_path, 'listenPort = 8000\nbackendAddress = "127.0.0.1"\nlistenPrt = 8001\nbackendPort = 9000\n')
    result = run_cli(str(path))
    assert result.returncode == 1, result
    line = _error_line(result.stderr_lines)
    assert line.startswith(f"Error parsing config file: {path}:3: unknown key 'listenPrt'"), line


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
    assert line.startswith("Error parsing config file: "), line
    # The full path is checked by the syntax-error test; here it is enough that the file is named.
    assert path.name in line, line


def test_check_accepts_a_valid_config(tmp_path: Path) -> None:
    path = _write(tmp_path, legacy_config(8000, 9000))
    result = run_cli("--check", str(path))
    assert result.returncode == 0, result
    assert f"configuration file {path} test is successful" in result.stdout.splitlines()
    assert not STARTED_RE.search(result.stdout)


def test_check_rejects_an_invalid_config(tmp_path: Path) -> None:
    path = _write(tmp_path, 'listenPort = 8000\nbackendAddress = "127.0.0.1"\nbackendPort = true\n')
    result = run_cli("--check", str(path))
    assert result.returncode == 1, result
    assert "test is successful" not in result.stdout
    line = _error_line(result.stderr_lines)
    assert line.startswith(f"Error parsing config file: {path}:3: "), line
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
                  f"backendPort = {echo_backend.port}")
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
    rsp = run_rsp(legacy_config(port, echo_backend.port))
    assert rsp.stdout_lines == [f"Started.  Listening on port {port}."]
    assert re.fullmatch(r"^Started\.  Listening on port \d+\.$", rsp.stdout_lines[0])
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
