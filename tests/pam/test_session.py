"""pam_unshare in real PAM sessions: the C login driver opens a session of a throw-away service, runs a
command in it as the user, and closes it; the test looks at the session from inside (the command's output)
and from the host (/proc of the test process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsp.cli import main
from support.pam_harness import (
    MODULE_PATH,
    PAMD_DIR,
    PERMIT_RULES,
    SESSION_TIMEOUT_S,
    SessionRun,
    SyslogCapture,
    build_driver,
    comm,
    host_children,
    is_running,
    module_line,
    pam_service,
    proc_mounts,
    status_field,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="a pam_unshare session unshares namespaces (CAP_SYS_ADMIN); the tests write /etc/pam.d")

OPENED = "0 Success"
# pam_strerror(PAM_SESSION_ERR), what a login program prints when the module refuses the session.
SESSION_ERR = "14 Cannot make/remove an entry for the specified session"
# syslog PRI of the module's lines: facility AUTHPRIV (10 << 3) with LOG_INFO (6) or LOG_ERR (3).
PRI_INFO = "<86>"
PRI_ERR = "<83>"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_driver(tmp_path_factory.mktemp("pam-driver"))


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[SyslogCapture]:
    capture = SyslogCapture(tmp_path / "log.sock")
    try:
        yield capture
    finally:
        capture.close()


def rules(*arguments: str) -> list[str]:
    return [*PERMIT_RULES, module_line(*arguments)]


def host_proc_mounts() -> list[str]:
    return proc_mounts(Path("/proc/self/mountinfo").read_text())


def ps_lines(output: list[str]) -> dict[int, tuple[str, str]]:
    """`ps ax -o pid=,stat=,comm=` lines (up to a line "END") as pid -> (stat, comm)."""
    found = {}
    for line in output[: output.index("END")]:
        pid, stat, name = line.split(None, 2)
        found[int(pid)] = (stat, name)
    return found


def test_session_sees_only_its_processes_and_the_host_is_unchanged(driver: Path, syslog: SyslogCapture) -> None:
    mounts_before = host_proc_mounts()
    script = "ps ax -o pid=,stat=,comm=; echo END; cat /proc/self/status; echo READY; read line; echo DONE"
    with pam_service(rules(f"syslog_socket={syslog.path}", "log_level=info")) as service:
        run = SessionRun(driver, service, "nobody", ["sh", "-c", script])
        try:
            run.read_until("READY")
            # While the session runs: the host's /proc mounts are untouched (private propagation), and the
            # host sees the helper as PID 1 and the user's shell as PID 2 of one new PID namespace.
            assert host_proc_mounts() == mounts_before
            children = {comm(pid): pid for pid in host_children(run.proc.pid)}
            assert set(children) == {"pam_unshare", "sh"}
            helper, shell = children["pam_unshare"], children["sh"]
            assert status_field(helper, "NSpid").split() == [str(helper), "1"]
            assert status_field(shell, "NSpid").split() == [str(shell), "2"]
            for kind in ("pid", "mnt"):
                assert os.readlink(f"/proc/{shell}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}")
                assert os.readlink(f"/proc/{shell}/ns/{kind}") == os.readlink(f"/proc/{helper}/ns/{kind}")
            code = run.finish(b"go\n")
        finally:
            run.kill()
    assert code == 0, run.stderr
    output = run.command_output()
    assert output[-1] == "DONE"
    # Inside: only the session's processes, PID 1 is the helper, the shell is not PID 1.
    processes = ps_lines(output)
    assert {pid: name for pid, (_, name) in processes.items()} == {1: "pam_unshare", 2: "sh", 3: "ps"}
    status = dict(line.split(":\t", 1) for line in output[output.index("END") + 1: output.index("READY")])
    assert int(status["Pid"]) > 2 and status["PPid"] == "2"
    assert status["Uid"].split()[0] == str(int(subprocess.check_output(["id", "-u", "nobody"])))
    report = run.report()
    assert report["open"] == OPENED and report["close"] == OPENED and report["command"] == "0"
    # The login program's own /proc was the session's (it is not in that PID namespace, so /proc/self is
    # empty for it), and after close it is back in its own namespaces.
    assert report["ns_after_open"] == "unreadable unreadable"
    assert report["ns_after_close"] == report["ns_before"]
    assert report["children_after_close"] == "none"  # the helper was reaped by close_session
    assert not is_running(helper) or comm(helper) != "pam_unshare"
    assert host_proc_mounts() == mounts_before
    logged = syslog.lines()
    assert len(logged) == 1 and logged[0].startswith(PRI_INFO), logged
    assert f"pam_unshare({service}:session): user nobody: private PID namespace" in logged[0]


def test_nothing_propagates_to_a_host_whose_mounts_are_shared(driver: Path) -> None:
    """systemd makes / shared; this machine's is private, so the host is simulated: the driver runs in a
    mount namespace of its own whose mounts are shared (util-linux unshare), and that namespace's proc
    mounts must be the same after the session (no unmount, no new proc mount propagated back)."""
    show = "grep ' - proc ' /proc/self/mountinfo"
    with pam_service(rules()) as service:
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "shared", "sh", "-c",
             f"{show}; echo SPLIT; {driver} {service} nobody true; {show} || echo PROC_UNMOUNTED"],
            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    before, _, after = result.stdout.partition("SPLIT\n")
    assert "shared:" in before  # the simulated host's /proc is shared: a propagation would reach it
    lines_after = [line for line in after.splitlines() if not line.startswith("driver: ")]
    assert lines_after == before.splitlines()
    assert "driver: open=0 Success" in after

def test_su_with_the_line_rsp_pam_install_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end with a real login program: `rsp pam install` edits a copy of /etc/pam.d/su, the copy is
    bind-mounted over the real one in a mount namespace of the test's own (the host's file is untouched),
    and `su` (session opened in su's process, shell forked and setuid there) runs the user's shell in it."""
    shutil.copy2(PAMD_DIR / "su", tmp_path / "su")
    assert main(["pam", "install", "--service", "su", "--pamd-dir", str(tmp_path)]) == 0
    assert str(MODULE_PATH) in (tmp_path / "su").read_text()
    capsys.readouterr()
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"mount --bind {tmp_path / 'su'} {PAMD_DIR / 'su'} && "
         "su -s /bin/sh nobody -c 'ps ax -o pid=,user=,comm=; echo END'"],
        capture_output=True, text=True, timeout=30, cwd="/")
    assert result.returncode == 0, result.stderr
    processes = [line.split() for line in result.stdout.splitlines()[: result.stdout.splitlines().index("END")]]
    assert processes == [["1", "root", "pam_unshare"], ["2", "nobody", "sh"], ["3", "nobody", "ps"]]

def test_init_reaps_orphans_and_the_session_end_kills_what_is_left(driver: Path) -> None:
    # An orphan (sleep 0.2 left by a shell that exits) is re-parented to the helper, which must reap it;
    # a background job still running at close dies with the namespace.
    script = ('sh -c "sleep 0.2 & exit"; sleep 60 & sleep 1; ps ax -o pid=,stat=,comm=; echo END; '
              "echo READY; read line")
    with pam_service(rules()) as service:
        run = SessionRun(driver, service, "nobody", ["sh", "-c", script])
        try:
            run.read_until("READY")
            shell = next(pid for pid in host_children(run.proc.pid) if comm(pid) == "sh")
            background = [pid for pid in host_children(shell) if comm(pid) == "sleep"]
            assert len(background) == 1
            code = run.finish(b"go\n")
        finally:
            run.kill()
    assert code == 0, run.stderr
    processes = ps_lines(run.command_output())
    assert [name for _, name in processes.values()].count("sleep") == 1  # the orphan is gone...
    assert not [pid for pid, (stat, _) in processes.items() if stat.startswith("Z")]  # ...reaped, no zombie
    assert run.report()["children_after_close"] == "none"
    assert not is_running(background[0]) or comm(background[0]) != "sleep"


def test_a_login_program_that_dies_takes_the_namespace_with_it(driver: Path) -> None:
    """No close_session at all (the login program is SIGKILLed): the session pipe's write end closes with
    it, the helper sees EOF and exits, and the kernel kills the session's processes."""
    with pam_service(rules()) as service:
        run = SessionRun(driver, service, "nobody", ["sh", "-c", "echo READY; read line"])
        try:
            run.read_until("READY")
            children = {comm(pid): pid for pid in host_children(run.proc.pid)}
            run.proc.kill()
            run.proc.wait(timeout=SESSION_TIMEOUT_S)
            for pid in children.values():
                deadline = time.monotonic() + SESSION_TIMEOUT_S
                while is_running(pid) and status_field(pid, "State")[0] != "Z" and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert not is_running(pid) or status_field(pid, "State")[0] == "Z", comm(pid)
        finally:
            run.kill()

@pytest.mark.parametrize(("user", "arguments"), [("root", ()), ("nobody", ("exempt_users=nobody,alice",))],
                         ids=["root-by-default", "listed"])
def test_an_exempt_user_gets_no_namespace(driver: Path, user: str, arguments: tuple[str, ...]) -> None:
    script = f"ps -p 1 -o comm=; test -d /proc/{os.getpid()} && echo SEES_THE_TEST; grep NSpid /proc/self/status"
    with pam_service(rules(*arguments)) as service:
        run = SessionRun(driver, service, user, ["sh", "-c", script])
        try:
            code = run.finish()
        finally:
            run.kill()
    assert code == 0, run.stderr
    output = run.command_output()
    assert output[0] == comm(1)  # the host's init
    assert "SEES_THE_TEST" in output
    assert len(output[2].split()) == 2  # "NSpid: N": one level, the host's
    report = run.report()
    assert report["open"] == OPENED
    assert report["ns_after_open"] == report["ns_before"]


def test_a_failing_proc_mount_refuses_the_session_and_leaves_the_caller_home(
        driver: Path, syslog: SyslogCapture) -> None:
    mounts_before = host_proc_mounts()
    with pam_service(rules("proc_options=no_such_option", f"syslog_socket={syslog.path}")) as service:
        run = SessionRun(driver, service, "nobody", ["echo", "RAN"])
        try:
            code = run.finish()
        finally:
            run.kill()
    assert code == 1
    report = run.report()
    assert report["open"] == SESSION_ERR
    assert "command" not in report and "RAN" not in run.command_output()
    # Never half in a new namespace: the same mount namespace and children's PID namespace as before.
    assert report["ns_after_open"] == report["ns_before"]
    assert report["children_after_close"] == "none"  # the failed helper was reaped
    assert host_proc_mounts() == mounts_before
    logged = syslog.lines()
    assert len(logged) == 1 and logged[0].startswith(PRI_ERR), logged
    assert "mount a fresh /proc" in logged[0] and "Invalid argument" in logged[0]


def test_a_bad_argument_refuses_the_session_in_any_login_program(driver: Path, syslog: SyslogCapture) -> None:
    with pam_service(rules("frobnicate=1", f"syslog_socket={syslog.path}")) as service:
        run = SessionRun(driver, service, "nobody", ["echo", "RAN"])
        try:
            assert run.finish() == 1
        finally:
            run.kill()
        pamtester = subprocess.run(["pamtester", service, "nobody", "open_session"], capture_output=True,
                                   text=True, timeout=30)
    assert run.report()["open"] == SESSION_ERR
    assert pamtester.returncode != 0
    assert SESSION_ERR.split(" ", 1)[1] in pamtester.stderr
    logged = syslog.lines()
    assert len(logged) == 2 and all("unknown argument 'frobnicate'" in line for line in logged), logged


def test_pamtester_opens_and_closes_a_session() -> None:
    """Another login program (pamtester) through the same module: open and close both succeed."""
    with pam_service(rules()) as service:
        result = subprocess.run(["pamtester", "-v", service, "nobody", "open_session", "close_session"],
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "successfully opened a session" in result.stdout + result.stderr


def test_the_throw_away_service_file_is_removed_even_on_failure() -> None:
    with pytest.raises(RuntimeError), pam_service(rules()) as service:
        assert (PAMD_DIR / service).is_file()
        raise RuntimeError("test body failed")
    assert not (PAMD_DIR / service).exists()


def test_an_empty_exempt_list_namespaces_root_and_sessions_nest(driver: Path) -> None:
    """`exempt_users=` namespaces root too; root's session then opens a session of its own (su inside an ssh
    session), which gets a namespace nested in the first, and both close back to where they were."""
    with pam_service(rules("exempt_users=")) as service:
        run = SessionRun(driver, service, "root",
                         [str(driver), service, "nobody", "sh", "-c", "ps ax -o pid=,stat=,comm=; echo END"])
        try:
            code = run.finish()
        finally:
            run.kill()
    assert code == 0, run.stderr
    processes = ps_lines(run.command_output())
    assert {pid: name for pid, (_, name) in processes.items()} == {1: "pam_unshare", 2: "sh", 3: "ps"}
    reports = [line for line in run.lines if line.startswith("driver: ")]
    outer_before, inner_before = (line for line in reports if line.startswith("driver: ns_before="))
    inner_after, outer_after = (line for line in reports if line.startswith("driver: ns_after_close="))  # inner first
    assert inner_before != outer_before  # the inner login program runs in the outer session's namespaces
    assert inner_after.split("=")[1] == inner_before.split("=")[1]
    assert outer_after.split("=")[1] == outer_before.split("=")[1]
    assert [line for line in reports if line.startswith("driver: open=")] == [f"driver: open={OPENED}"] * 2
