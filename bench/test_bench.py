"""Tests of the harness's own parsing and measuring (run: .venv/bin/python -m pytest bench/test_bench.py).

No servers: the parsers get real wrk/ab output captured on this machine, procstat gets a real child process.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import configs
import procstat
import report
import scenarios
from lib import LoadResult, free_ports, parse_ab, parse_wrk

AB_OUTPUT = """\
Server Software:        nginx/1.22.1
Server Hostname:        127.0.0.1
Server Port:            41001

Document Path:          /small
Document Length:        97 bytes

Concurrency Level:      100
Time taken for tests:   1.160 seconds
Complete requests:      20000
Failed requests:        3
   (Connect: 0, Receive: 0, Length: 3, Exceptions: 0)
Non-2xx responses:      2
Total transferred:      6560000 bytes
HTML transferred:       1940000 bytes
Requests per second:    17241.38 [#/sec] (mean)

Percentage of the requests served within a certain time (ms)
  50%      5
  66%      6
  99%     11
 100%     13 (longest request)
"""


def test_parse_ab_counts_failures_and_non_2xx_as_errors() -> None:
    r = parse_ab(AB_OUTPUT)
    assert r == LoadResult(requests=19997, bytes=6560000, seconds=1.160, errors=5, p50_ms=5.0, p99_ms=11.0)
    assert math.isclose(r.rps, 19997 / 1.16)


def test_parse_wrk_reads_the_done_hook_line() -> None:
    text = ("Running 2s test @ http://127.0.0.1:1/small\n  1 threads and 50 connections\n"
            "BENCH requests=70000 bytes=23000000 duration_us=2000000 connect=0 read=1 write=0 status=2 "
            "timeout=0 p50_us=1232 p99_us=2607\n")
    r = parse_wrk(text)
    assert (r.requests, r.bytes, r.seconds, r.errors) == (70000, 23000000, 2.0, 3)
    assert (r.p50_ms, r.p99_ms) == (1.232, 2.607)
    assert r.rps == 35000


def test_parse_stat_handles_parentheses_and_spaces_in_comm() -> None:
    line = "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 99 0 0\n"
    p = procstat.parse_stat(line)
    assert (p.pid, p.ppid, p.comm, p.ticks, p.child_ticks) == (4242, 17, "a (b) c", 250 + 50, 7 + 3)


def test_tree_cpu_includes_a_busy_grandchild() -> None:
    # A shell whose child burns ~0.5 s of CPU: the shell itself uses almost none.
    burn = f"{sys.executable} -c 'import time; t=time.process_time()\nwhile time.process_time()-t<0.5: pass'"
    proc = subprocess.Popen(["sh", "-c", f"{burn}; sleep 5"])
    try:
        deadline = time.monotonic() + 20
        used = 0.0
        while time.monotonic() < deadline and used < 0.4:
            time.sleep(0.1)
            used = procstat.tree_seconds([proc.pid])[proc.pid]
        assert 0.4 <= used < 2.0
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_free_ports_are_distinct() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5


def test_rsp_config_forms(tmp_path: Path) -> None:
    tcp = configs.rsp_config(tmp_path, "a", 8000, [9000], "tcp").read_text()
    assert 'listenPort = 8000' in tcp and 'backendPort = 9000' in tcp and 'listenAddress = "127.0.0.1"' in tcp
    lb = configs.rsp_config(tmp_path, "b", 8001, [9001, 9002], "http", "leastconn").read_text()
    assert 'mode = "http"' in lb and 'algorithm = "leastconn"' in lb and '"127.0.0.1:9002"' in lb


def test_small_body_is_97_bytes(tmp_path: Path) -> None:
    root = configs.write_docroot(tmp_path)
    assert (root / "small").stat().st_size == 97
    assert (root / "1m").stat().st_size == 1024 * 1024


def _sample(load: scenarios.Load, target: str, rep: int, requests: int, cpu: float | None, p50: float
            ) -> report.Sample:
    result = LoadResult(requests=requests, bytes=requests * 100, seconds=1.0, errors=0, p50_ms=p50, p99_ms=p50)
    return report.Sample(load=load, target=target, rep=rep, result=result, proxy_cpu=cpu, backend_cpu=0.0,
                         client_cpu=0.0, wall=1.0, other_cores=0.0)


def test_ratios_are_medians_of_per_repetition_ratios() -> None:
    load = scenarios.Load("small", "small", "wrk", "/small", 50, "req", duration=1)
    samples = [
        # rep 0: rsp 20 µs/req, haproxy 10 µs/req; rep 1: 30 vs 30; rep 2: 40 vs 20
        _sample(load, "rsp", 0, 1000, 0.020, 1.5), _sample(load, "haproxy", 0, 1000, 0.010, 1.2),
        _sample(load, "rsp", 1, 1000, 0.030, 1.5), _sample(load, "haproxy", 1, 1000, 0.030, 1.2),
        _sample(load, "rsp", 2, 1000, 0.040, 1.5), _sample(load, "haproxy", 2, 1000, 0.020, 1.2),
        *(_sample(load, "direct", r, 2000, None, 1.0) for r in range(3)),
    ]
    table = report.ratio_table(samples, [load], [("rsp", "haproxy")])
    row = table.splitlines()[-1].split("|")
    # req/s, MiB/s, CPU A÷B (2, 1, 2 -> 2.00), efficiency (0.5, 1, 0.5 -> 0.50), p50 1.25, added 0.5 / 0.2
    assert [c.strip() for c in row[3:10]] == ["1.00x", "1.00x", "2.00x", "0.50x", "1.25x", "0.500", "0.200"]
    results = report.results_table(samples, [load], ["rsp", "haproxy", "direct"])
    assert "| small | rsp | 1,000 | 0.1 | 30.0 | µs/req | 67% |" in results


def test_other_by_comm_counts_new_processes_whole_and_ignores_pid_reuse() -> None:
    before = procstat.Snapshot(trees={}, ours=5.0, busy=100.0, children_cpu=0.0,
                               others={10: ("cc1", 100), 11: ("make", 50), 12: ("old", 900)})
    after = procstat.Snapshot(trees={}, ours=8.0, busy=104.5, children_cpu=0.0,
                              others={10: ("cc1", 300), 11: ("make", 50), 12: ("new", 20), 13: ("cc1", 30)})
    assert procstat.other_seconds(before, after) == 1.5
    used = procstat.other_by_comm(before, after)
    assert sorted(used) == ["cc1", "new"]
    assert math.isclose(used["cc1"], 230 / procstat.CLK_TCK)
    assert math.isclose(used["new"], 20 / procstat.CLK_TCK)


def test_snapshot_leaves_our_own_children_out_of_others() -> None:
    proc = subprocess.Popen(["sleep", "5"])
    try:
        snap = procstat.snapshot([proc.pid])
        assert proc.pid not in snap.others
        assert proc.pid in snap.trees
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_miss_table_divides_each_proxys_median_miss_by_its_own_median_without_cache() -> None:
    import run_cache

    misses = {("rsp cache", False): [10.0, 30.0, 20.0], ("rsp cache", True): [50.0, 40.0, 60.0],
              ("varnish", False): [8.0, 8.0, 8.0], ("varnish", True): [12.0, 99.0, 10.0]}
    lines = run_cache.miss_table(misses, ["rsp cache", "varnish"])
    assert lines[2] == "| rsp cache | 20.0 (10.0, 30.0, 20.0) | 50.0 (50.0, 40.0, 60.0) | 2.50x |"
    assert lines[3] == "| varnish | 8.0 (8.0, 8.0, 8.0) | 12.0 (12.0, 99.0, 10.0) | 1.50x |"


def test_varnish_without_its_cache_passes_every_request(tmp_path: Path) -> None:
    import run_cache

    argv = run_cache.varnish_argv("varnishd", tmp_path, 9001, 9000, passing=True)
    vcl = Path(argv[argv.index("-f") + 1]).read_text()
    assert "return (pass);" in vcl and '.port = "9000"' in vcl
    assert "-b" not in argv  # -b and -f exclude each other in varnishd
    assert "-b" in run_cache.varnish_argv("varnishd", tmp_path, 9001, 9000)
