"""The namespace syscalls, each exercised in a forked child so that the test process is never changed."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from rsp.linux import syscalls
from support.forked import run_forked

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root (CAP_SYS_ADMIN)")


def test_bad_flags_raise_oserror_with_errno() -> None:
    with pytest.raises(OSError) as caught:
        syscalls.unshare(0x1)  # CSIGNAL bits: never valid for unshare
    assert caught.value.errno == errno.EINVAL


def test_setns_on_a_non_namespace_fd_raises() -> None:
    fd = os.open("/", os.O_RDONLY)
    try:
        with pytest.raises(OSError) as caught:
            syscalls.setns(fd, syscalls.CLONE_NEWNET)
        assert caught.value.errno == errno.EINVAL
    finally:
        os.close(fd)


def test_mount_of_a_missing_target_raises_enoent_or_eperm(tmp_path: object) -> None:
    with pytest.raises(OSError) as caught:
        syscalls.mount("proc", "/nonexistent/rsp-test", "proc", 0, None)
    assert caught.value.errno in (errno.ENOENT, errno.EPERM)


@needs_root
def test_unshare_uts_changes_the_hostname_of_the_child_only() -> None:
    before = socket.gethostname()

    def body(out: int) -> int:
        syscalls.unshare(syscalls.CLONE_NEWUTS)
        syscalls.sethostname("rsp-uts-test")
        os.write(out, socket.gethostname().encode())
        return 0

    code, output = run_forked(body)
    assert (code, output) == (0, b"rsp-uts-test")
    assert socket.gethostname() == before


@needs_root
def test_unshare_net_leaves_only_loopback_and_setns_goes_back() -> None:
    host_links = set(name for _, name in socket.if_nameindex())

    def body(out: int) -> int:
        host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        syscalls.unshare(syscalls.CLONE_NEWNET)
        inside = sorted(name for _, name in socket.if_nameindex())
        syscalls.setns(host_ns, syscalls.CLONE_NEWNET)
        back = sorted(name for _, name in socket.if_nameindex())
        os.write(out, repr((inside, back)).encode())
        return 0

    code, output = run_forked(body)
    assert code == 0, output
    inside, back = eval(output)  # a repr of two lists of names written by the child
    assert inside == ["lo"]
    assert set(back) == host_links


@needs_root
def test_enter_namespace_by_path_joins_another_process_uts() -> None:
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    holder = os.fork()
    if holder == 0:
        try:
            syscalls.unshare(syscalls.CLONE_NEWUTS)
            syscalls.sethostname("rsp-holder")
            os.write(ready_w, b"1")
            os.read(hold_r, 1)  # stay alive (and the namespace with it) until the test is done
        finally:
            os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"1"

        def body(out: int) -> int:
            syscalls.enter_namespace(f"/proc/{holder}/ns/uts", syscalls.CLONE_NEWUTS)
            os.write(out, socket.gethostname().encode())
            return 0

        assert run_forked(body) == (0, b"rsp-holder")
    finally:
        os.write(hold_w, b"x")
        os.waitpid(holder, 0)
        for fd in (ready_r, ready_w, hold_r, hold_w):
            os.close(fd)


@needs_root
def test_private_bind_mount_and_detach_stay_inside_the_mount_namespace(tmp_path: os.PathLike[str]) -> None:
    source = os.path.join(tmp_path, "src")
    target = os.path.join(tmp_path, "dst")
    os.mkdir(source)
    os.mkdir(target)
    with open(os.path.join(source, "marker"), "w") as f:
        f.write("x")

    def body(out: int) -> int:
        syscalls.unshare(syscalls.CLONE_NEWNS)
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE, None)
        syscalls.mount(source, target, None, syscalls.MS_BIND, None)
        seen = os.listdir(target)
        syscalls.umount2(target, syscalls.MNT_DETACH)
        os.write(out, repr((seen, os.listdir(target))).encode())
        return 0

    code, output = run_forked(body)
    assert code == 0, output
    assert eval(output) == (["marker"], [])
    assert os.listdir(target) == []
