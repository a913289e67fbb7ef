"""render() (a prometheus-client custom collector): text format 0.0.4 read back with prometheus_client's own
parser (pure, no I/O)."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from rsp.metrics.merge import merge
from rsp.metrics.prometheus import render
from support.snapshots import backend, snap

MACHINE: dict[str, Any] = {"workers": [{"pid": 1}, {"pid": 2}], "reloads": 3, "worker_restarts": 1,
                           "last_reload": 1700.5, "started": 1600.0}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert isinstance(s, Sample)
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(table: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return table[(name, frozenset(labels.items()))]


def test_values_read_back() -> None:
    stats = merge([snap(1, [backend("a", ok=3, fail=1, active=2, idle=1, counts=[1, 2, 1], seconds=1.5,
                                    last="ok", last_time=1650.0),
                            backend("b", "down", fail=2, last="connection refused", last_time=1651.0)],
                        accepted=4, retries=2)])
    table = samples(render(stats, MACHINE))
    assert value(table, "rsp_workers") == 2
    assert value(table, "rsp_reloads_total") == 3
    assert value(table, "rsp_worker_restarts_total") == 1
    assert value(table, "rsp_last_reload_timestamp_seconds") == 1700.5
    assert value(table, "rsp_start_time_seconds") == 1600.0
    web_a = {"pool": "web", "backend": "a"}
    assert value(table, "rsp_backend_http_requests_total", code="2xx", **web_a) == 3
    assert value(table, "rsp_backend_http_requests_total", code="5xx", **web_a) == 1
    assert value(table, "rsp_backend_connections", state="active", **web_a) == 2
    assert value(table, "rsp_backend_connections", state="idle", **web_a) == 1
    assert value(table, "rsp_backend_state", state="up", **web_a) == 1
    assert value(table, "rsp_backend_state", state="down", pool="web", backend="b") == 1
    assert value(table, "rsp_backend_state", state="up", pool="web", backend="b") == 0
    assert value(table, "rsp_backend_health_checks_total", result="fail", pool="web", backend="b") == 2
    assert value(table, "rsp_backend_last_check_ok", **web_a) == 1
    assert value(table, "rsp_backend_last_check_ok", pool="web", backend="b") == 0
    assert value(table, "rsp_backend_last_check_timestamp_seconds", **web_a) == 1650.0
    assert value(table, "rsp_backend_connect_failures_total", pool="web", backend="b") == 2
    assert value(table, "rsp_pool_retries_total", pool="web") == 2
    assert value(table, "rsp_pool_unserved_http_requests_total", pool="web", code="5xx") == 2
    listener = {"listener": "127.0.0.1:80", "mode": "http"}
    assert value(table, "rsp_listener_connections_total", **listener) == 4
    assert value(table, "rsp_listener_connections", state="idle", **listener) == 2
    assert value(table, "rsp_listener_received_bytes_total", **listener) == 28
    assert value(table, "rsp_listener_http_responses_total", code="2xx", **listener) == 4
    # Histogram: cumulative buckets ending in +Inf == _count.
    assert value(table, "rsp_backend_response_seconds_bucket", le="0.1", **web_a) == 1
    assert value(table, "rsp_backend_response_seconds_bucket", le="1.0", **web_a) == 3
    assert value(table, "rsp_backend_response_seconds_bucket", le="+Inf", **web_a) == 4
    assert value(table, "rsp_backend_response_seconds_count", **web_a) == 4
    assert value(table, "rsp_backend_response_seconds_sum", **web_a) == 1.5


def test_format_lines() -> None:
    text = render(merge([snap(1, [backend("a", ok=1)], accepted=1)]), {**MACHINE, "last_reload": None})
    assert text.endswith("\n")
    assert "rsp_last_reload_timestamp_seconds" not in text  # no reload yet: no sample rather than a fake 0
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram")
            assert name.startswith("rsp_")
            names.add(name)
            if kind == "counter":
                assert name.endswith("_total")
        elif not line.startswith("# HELP "):
            # Metric names may hold digits after the first character (rsp_listener_http2_*), as Prometheus's
            # grammar [a-zA-Z_:][a-zA-Z0-9_:]* allows.
            assert re.fullmatch(r'rsp_[a-z0-9_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? \S+', line), line
    # Every family is declared once.
    assert len(names) == sum(1 for line in text.splitlines() if line.startswith("# TYPE "))
    # No backend checked yet: no last-check timestamp invented.
    assert 'rsp_backend_last_check_timestamp_seconds{' not in text


def test_label_escaping_reads_back() -> None:
    nasty = 'we"ird\\name\nline <b>'
    stats = merge([snap(1, [backend(nasty, ok=2)])])
    text = render(stats, MACHINE)
    assert 'backend="we\\"ird\\\\name\\nline <b>"' in text
    table = samples(text)
    assert value(table, "rsp_backend_http_requests_total", pool="web", backend=nasty, code="2xx") == 2


def test_cache_families_only_with_a_cache_and_without_store_figures_when_it_failed() -> None:
    plain = render(merge([snap(1, [backend("a")])]), MACHINE)
    assert "rsp_cache_" not in plain
    one, two = snap(1, [backend("a")]), snap(2, [backend("a")])
    one["caches"] = {"pages": {"name": "pages", "hits": 2, "misses": 1, "stored": 1,
                               "store": {"evicted_here": 1, "bytes": 8192, "entries": 2, "budget": 60000}}}
    two["caches"] = {"pages": {"name": "pages", "hits": 5, "misses": 0, "stored": 0,
                               "store": {"evicted_here": 0, "error": "CacheStoreError: gone"}}}
    table = samples(render(merge([one, two]), MACHINE))
    assert value(table, "rsp_cache_hits_total", cache="pages") == 7
    assert value(table, "rsp_cache_stores_total", cache="pages") == 1
    assert value(table, "rsp_cache_evictions_total", cache="pages") == 1
    assert value(table, "rsp_cache_stale_total", cache="pages") == 0  # a field no worker reported: 0
    assert value(table, "rsp_cache_objects", cache="pages") == 2  # the first worker's store figures
    broken = samples(render(merge([two]), MACHINE))
    assert ("rsp_cache_objects", frozenset({("cache", "pages")})) not in broken
    assert value(broken, "rsp_cache_hits_total", cache="pages") == 5
