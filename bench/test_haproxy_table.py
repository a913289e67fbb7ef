"""Tests of bench/haproxy_table.py's own parts, without loads.

    .venv/bin/python -m pytest bench/test_haproxy_table.py

The table's arithmetic and formatting on made-up samples; the configs of every pair are checked by
`haproxy -c` and `rsp --check` themselves.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import haproxy_table as ht
import lib

ROOT = Path(__file__).resolve().parent.parent


def _samples(figure: str, rsp: list[float], haproxy: list[float]) -> list[ht.Sample]:
    return ([ht.Sample(figure, ht.RSP, rep, v) for rep, v in enumerate(rsp)]
            + [ht.Sample(figure, ht.HAPROXY, rep, v) for rep, v in enumerate(haproxy)])


def test_row_is_median_over_median_with_the_per_run_ratios_in_order() -> None:
    samples = _samples("new-conn-2", [20.0, 30.0, 40.0], [10.0, 30.0, 20.0])
    row = ht.table_row(ht.BY_KEY["new-conn-2"], samples).split("|")
    # medians 30 and 20: 1.50x, although the median of the per-run ratios (2, 1, 2) would be 2.00
    assert [c.strip() for c in row[2:8]] == ["30.0", "20.0", "**1.50x**", "2.00, 1.00, 2.00", "≤ 1.05x", "2 / 2"]


def test_a_repetition_without_haproxy_is_left_out_of_the_ratios_and_errors_are_named() -> None:
    samples = _samples("tcp", [12.0, 14.0], [10.0])
    samples[1].errors = 3
    assert ht.per_run_ratios(samples, "tcp") == [1.2]
    row = ht.table_row(ht.BY_KEY["tcp"], samples)
    assert "(3 errors)" in row and "| 13.0 | 10.0 | **1.30x** | 1.20 |" in row


def test_a_figure_without_samples_prints_dashes() -> None:
    row = ht.table_row(ht.BY_KEY["idle-memory"], [])
    assert row.split("|")[2:6] == [" — ", " — ", " — ", " — "]
    assert math.isnan(ht.median([math.nan]))


def test_table_has_a_row_per_figure_in_the_issue_order() -> None:
    figures = ht.select("tcp,new-conn-1")
    assert [f.key for f in figures] == ["new-conn-1", "tcp"]
    lines = ht.table(figures, []).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| a new connection per request")


def test_select_names_the_unknown_figure() -> None:
    with pytest.raises(lib.BenchError, match="'nope'"):
        ht.select("tcp,nope")


def test_worker_split_is_each_workers_share_largest_first() -> None:
    samples = [ht.Sample("keepalive-2", ht.RSP, 0, 1.0, worker_cpu=(0.5, 1.5)),
               ht.Sample("keepalive-2", ht.RSP, 1, 1.0, worker_cpu=(1.0, 1.0)),
               ht.Sample("keepalive-2", ht.HAPROXY, 0, 1.0, worker_cpu=(3.0, 1.0))]
    assert ht.worker_split(samples, "keepalive-2", ht.RSP) == "75/25, 50/50"
    assert ht.worker_split(samples, "keepalive-2", ht.HAPROXY) == "75/25"


def test_thread_cpu_reads_every_thread_of_a_process() -> None:
    import threading

    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        threads = ht.thread_cpu(os.getpid())
        assert len(threads) >= 2 and os.getpid() in threads and all(v >= 0 for v in threads.values())
    finally:
        stop.set()
        worker.join(10)


def test_ab_runs_for_the_duration_with_the_request_cap_after_it() -> None:
    argv = ht.ab_timed_argv("ab", "http://127.0.0.1:1/small", 100, 5)
    assert argv[:3] == ["ab", "-t", "5"]
    assert argv.index("-n") > argv.index("-t") and argv[argv.index("-c") + 1] == "100"


def test_quick_is_one_short_repetition() -> None:
    args = ht.parse_args(["--quick"])
    assert (args.reps, args.duration, args.idle_conns) == (1, 2, ht.QUICK_IDLE_CONNS)


@pytest.mark.parametrize("pair", sorted({f.pair for f in ht.FIGURES if f.pair}))
def test_every_pairs_configs_are_accepted_by_rsp_and_haproxy(tmp_path: Path, pair: str) -> None:
    rsp_port, hap_port, backend = lib.free_ports(3)
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    argv, workers, scheme = ht.pair_argv(pair, tmp_path, rsp_port, hap_port, backend, haproxy)
    figures = [f for f in ht.FIGURES if f.pair == pair]
    assert {f.workers for f in figures} == {workers}
    assert scheme == ("https" if pair.startswith("tls-") else "http")
    hap_cfg = Path(argv[ht.HAPROXY][-1]).read_text()
    assert f"nbthread {workers}\n" in hap_cfg
    assert f"mode {'tcp' if pair.startswith('tcp-') else 'http'}\n" in hap_cfg
    done = subprocess.run([argv[ht.HAPROXY][0], "-c", "-f", argv[ht.HAPROXY][-1]], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    rsp_conf = Path(argv[ht.RSP][-1])
    assert f"workers = {workers}\n" in rsp_conf.read_text()
    done = subprocess.run([sys.executable, "-m", "rsp", "--check", str(rsp_conf)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
