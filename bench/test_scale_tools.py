"""Tests of the scale and per-connection tools' own parts (run: .venv/bin/python -m pytest bench/test_scale_tools.py).

Real parts: the configs scale.py writes are checked by `rsp --check` and `haproxy -c` themselves; the strace
reader gets real `strace -c` output captured on this machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

import conn_cost
import lib
import scale
import scale_routestore
import scale_tls

ROOT = Path(__file__).resolve().parent.parent

STRACE_C = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 31.88    0.045171          11      4021           recvfrom
 28.70    0.040667          10      4000           sendto
 12.07    0.017101           8      2085        85 accept4
  0.01    0.000014           7         2         2 connect
------ ----------- ----------- --------- --------- ----------------
100.00    0.141707           9     14112        87 total
"""


def test_read_syscalls_counts_calls_and_errors_by_name(tmp_path: Path) -> None:
    out = tmp_path / "strace.txt"
    out.write_text(STRACE_C)
    calls, errors = conn_cost.read_syscalls(out)
    assert calls == {"recvfrom": 4021, "sendto": 4000, "accept4": 2085, "connect": 2}
    assert errors == {"accept4": 85, "connect": 2}


STRACE_ACCEPTS = """\
201 epoll_wait(5, [{events=EPOLLIN, data={u32=7, u64=7}}], 1024, 1000) = 1
201 accept4(7, {sa_family=AF_INET, sin_port=htons(40110), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 9
201 accept4(7, 0x7ffd, [16], SOCK_CLOEXEC) = -1 EAGAIN (Resource temporarily unavailable)
202 epoll_wait(6,  <unfinished ...>
201 accept4(7, {sa_family=AF_INET, sin_port=htons(40112), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 10
202 <... epoll_wait resumed>[{events=EPOLLIN, data={u32=7, u64=7}}], 1024, 1000) = 1
202 accept4(7, {sa_family=AF_INET, sin_port=htons(40114), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 11
202 epoll_wait(6, [], 1024, 0) = 0
203 epoll_wait(4, [], 1024, 1000) = 0
"""


def test_read_accepts_ranks_processes_by_accepts_and_counts_empty_ones() -> None:
    counts = conn_cost.read_accepts(STRACE_ACCEPTS)
    assert counts["accept4"] == 3 and counts["accept4 EAGAIN"] == 1
    assert (counts["p1 accept4"], counts["p1 accept4 EAGAIN"], counts["p1 epoll_wait"]) == (2, 1, 1)
    assert (counts["p2 accept4"], counts["p2 epoll_wait"], counts["p2 epoll_wait empty"]) == (1, 2, 1)
    assert (counts["epoll_wait"], counts["epoll_wait empty"]) == (4, 2)  # the unfinished call counted once
    assert conn_cost.per_process_split(counts).splitlines() == [
        "  p1: 2 accepts (67 %), 1 EAGAIN, 1 epoll_wait (0 empty)",
        "  p2: 1 accepts (33 %), 0 EAGAIN, 2 epoll_wait (1 empty)",
        "  p3: 0 accepts (0 %), 0 EAGAIN, 1 epoll_wait (1 empty)"]


def test_read_instructions_sums_every_process_file(tmp_path: Path) -> None:
    prefix = tmp_path / "count-200"
    (tmp_path / "count-200.101").write_text("events: Ir\nsummary: 1000\n")
    (tmp_path / "count-200.102").write_text("events: Ir\nsummary: 234\n")
    (tmp_path / "count-2000.103").write_text("events: Ir\nsummary: 99999\n")
    assert conn_cost.read_instructions(prefix) == 1234


def test_rsp_routes_config_is_accepted_by_rsp_check(tmp_path: Path) -> None:
    port, backend = lib.free_ports(2)
    argv = scale.rsp_argv(tmp_path, port, [backend], 1000)
    conf = Path(argv[-1])
    assert conf.read_text().count("host = ") == 1000
    done = subprocess.run([sys.executable, "-m", "rsp", "--check", str(conf)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_haproxy_routes_config_is_accepted_by_haproxy(tmp_path: Path) -> None:
    argv = scale.haproxy_argv(tmp_path, 18080, [18081], 100)
    assert len((tmp_path / "hosts-18080.map").read_text().splitlines()) == 100
    haproxy = shutil.which(argv[0]) or argv[0]
    done = subprocess.run([haproxy, "-c", "-f", argv[-1]], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("algorithm", sorted(scale.HAPROXY_BALANCE))
def test_every_algorithm_config_is_accepted_by_rsp_and_haproxy(tmp_path: Path, algorithm: str) -> None:
    port, *backends = lib.free_ports(4)
    rsp = subprocess.run([sys.executable, "-m", "rsp", "--check",
                          scale.rsp_argv(tmp_path, port, backends, 0, algorithm)[-1]],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert rsp.returncode == 0, rsp.stdout + rsp.stderr
    argv = scale.haproxy_argv(tmp_path, port, backends, 0, algorithm, workers=2)
    assert "nbthread 2" in Path(argv[-1]).read_text()
    done = subprocess.run([shutil.which(argv[0]) or argv[0], "-c", "-f", argv[-1]], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_certificates_are_served_by_name_from_both_configs(tmp_path: Path) -> None:
    ca, key, leaves = scale_tls.make_certificates(tmp_path, 3)
    certificates = [x509.load_pem_x509_certificate(leaf.read_bytes()) for leaf in leaves]
    names = [c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) for c in certificates]
    assert names == [["s1.example"], ["s2.example"], ["s3.example"]]
    port, backend = lib.free_ports(2)
    conf = scale_tls.rsp_config(tmp_path, port, backend, ca, key, leaves, tmp_path / "admin.sock")
    done = subprocess.run([sys.executable, "-m", "rsp", "--check", str(conf)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    cfg = scale_tls.haproxy_config(tmp_path, port, backend, leaves)
    done = subprocess.run([shutil.which("haproxy") or "haproxy", "-c", "-f", str(cfg)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_routestore_haproxy_map_names_every_host(tmp_path: Path) -> None:
    argv = scale_routestore.haproxy_config(tmp_path, 18090, 18091, 50)
    assert (tmp_path / "hosts-50.map").read_text().splitlines()[49] == "h49.bench be"
    done = subprocess.run([shutil.which(argv[0]) or argv[0], "-c", "-f", argv[-1]], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_defer_accept_prelude_sets_the_option_on_tcp_listeners_only(tmp_path: Path) -> None:
    code = conn_cost.DEFER_ACCEPT_PRELUDE.format(seconds=1) + (
        "import os, socket; tcp = socket.socket(); tcp.bind(('127.0.0.1', 0)); tcp.listen(); "
        f"unix = socket.socket(socket.AF_UNIX); unix.bind({str(tmp_path / 's')!r}); unix.listen(); "
        "print(tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0  # the kernel rounds the seconds to its retransmission steps


def test_experiments_under_valgrind_keep_the_longer_worker_readiness_wait(tmp_path: Path) -> None:
    port, backend = lib.free_ports(2)
    for extra in ({}, {"defer_accept": 1}):
        argv = conn_cost.rsp_workers_under_valgrind(
            tmp_path, conn_cost.proxy_argv("rsp", tmp_path, port, backend, 2, 0, **extra), tmp_path / "out")
        code = argv[argv.index("-c") + 1]
        assert "import rsp.master.master as m; m.WORKER_READY_TIMEOUT = " in code
        assert ("TCP_DEFER_ACCEPT" in code) == bool(extra)
