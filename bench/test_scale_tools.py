"""Tests of the scale and per-connection tools' own parts (run: .venv/bin/python -m pytest bench/test_scale_tools.py).

Real parts: the configs scale.py writes are checked by `rsp --check` and `haproxy -c` themselves; the strace
reader gets real `strace -c` output captured on this machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import conn_cost
import lib
import scale

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
