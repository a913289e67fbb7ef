"""Render a (merged) snapshot as the Prometheus text exposition, through prometheus-client.

Pure: rsp.metrics.snapshot's dict (one process's, or rsp.metrics.merge's for the machine) and the machine
facts in, text out. The snapshot is handed to prometheus-client as a custom collector (`SnapshotCollector`,
https://prometheus.github.io/client_python/collector/custom/): rsp builds each metric family from its own
counters, and the library writes the format (HELP and TYPE lines, label and HELP escaping, value
formatting, a histogram's cumulative `_bucket`/`_count`/`_sum`). rsp keeps no prometheus-client metric
objects: its counters are plain ints on the hot path (rsp.metrics.counters), read when scraped. Every name
starts with `rsp_`; the list with their meaning is docs/metrics.md. prometheus-client is imported at the
first scrape, not at start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

# What generate_latest writes: the text format, version 0.0.4 (what every Prometheus server reads).
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
BACKEND_STATES: Final = ("up", "down", "drain")
STATUS_LABELS: Final = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")

Row = tuple[dict[str, str], Mapping[str, Any]]


class SnapshotCollector:
    """A prometheus-client custom collector over one snapshot and the machine facts."""

    def __init__(self, stats: Mapping[str, Any], machine: Mapping[str, Any]) -> None:
        self.stats = stats
        self.machine = machine

    def collect(self) -> Iterator[Metric]:
        yield from _machine(self.machine)
        listeners = [({"listener": item["name"], "mode": item["mode"]}, item)
                     for item in self.stats.get("listeners", [])]
        yield from _listeners(listeners)
        pools = self.stats.get("pools", [])
        yield from _pools([({"pool": pool["name"]}, pool) for pool in pools])
        yield from _backends([({"pool": pool["name"], "backend": b["name"]}, b)
                              for pool in pools for b in pool["backends"]])
        caches = self.stats.get("caches", {})
        if caches:  # no cache configured: no family at all, not a family of nothing
            yield from _caches([({"cache": name}, caches[name]) for name in sorted(caches)])


def render(stats: Mapping[str, Any], machine: Mapping[str, Any]) -> str:
    """The text of `/metrics` for snapshot `stats` and the machine facts `machine` (rsp.metrics.endpoint)."""
    from prometheus_client.exposition import generate_latest
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(stats, machine))
    return generate_latest(registry).decode("utf-8")


def _family(kind: str, name: str, help_text: str, labels: Sequence[str] = ()) -> Any:
    """A prometheus-client metric family (`kind`: counter, gauge, histogram). A counter's name ends in
    `_total`, which the library takes off the family and puts back on the sample."""
    from prometheus_client import core

    cls = {"counter": core.CounterMetricFamily, "gauge": core.GaugeMetricFamily,
           "histogram": core.HistogramMetricFamily}[kind]
    return cls(name, help_text, labels=list(labels))


def _single(kind: str, name: str, help_text: str, value: float) -> Metric:
    family = _family(kind, name, help_text)
    family.add_metric([], value)
    result: Metric = family
    return result


def _machine(machine: Mapping[str, Any]) -> Iterator[Metric]:
    yield _single("gauge", "rsp_start_time_seconds", "When rsp started, seconds since the Unix epoch.",
                  float(machine.get("started", 0.0)))
    yield _single("gauge", "rsp_workers", "Worker processes serving traffic.", len(machine.get("workers", [])))
    yield _single("counter", "rsp_reloads_total", "Configuration reloads done.", int(machine.get("reloads", 0)))
    yield _single("counter", "rsp_worker_restarts_total", "Worker processes restarted after they died.",
                  int(machine.get("worker_restarts", 0)))
    last = machine.get("last_reload")
    if last is not None:  # no reload yet: no sample rather than a fake 0
        yield _single("gauge", "rsp_last_reload_timestamp_seconds",
                      "When the configuration was last reloaded, seconds since the Unix epoch.", float(last))


def _listeners(rows: list[Row]) -> Iterator[Metric]:
    yield _each(rows, "counter", "rsp_listener_connections_total", "Client connections accepted.",
                lambda i: i["accepted"])
    yield _active_idle(rows, "rsp_listener_connections",
                       "Client connections open now: active (a request or a TCP relay in progress) or idle "
                       "(HTTP keep-alive between requests).")
    yield _each(rows, "counter", "rsp_listener_received_bytes_total", "Bytes read from clients.",
                lambda i: i["bytes_received"])
    yield _each(rows, "counter", "rsp_listener_sent_bytes_total", "Bytes written to clients.",
                lambda i: i["bytes_sent"])
    yield _each(rows, "counter", "rsp_listener_http2_connections_total",
                "Client connections accepted that spoke HTTP/2 (ALPN h2 or prior knowledge).",
                lambda i: i.get("http2_connections", 0))
    yield _each(rows, "counter", "rsp_listener_http2_streams_total",
                "HTTP/2 streams clients opened and rsp served (one request each; refused ones not counted).",
                lambda i: i.get("http2_streams", 0))
    http = [(labels, item) for labels, item in rows if item["mode"] == "http"]
    yield _by_status_class(http, "rsp_listener_http_responses_total",
                           "HTTP responses to clients by status class, refusals before routing included "
                           "(4xx includes 499, the client left first; other: dropped without a status).",
                           "responses", ("listener", "mode"))


def _pools(rows: list[Row]) -> Iterator[Metric]:
    yield _each(rows, "counter", "rsp_pool_retries_total",
                "Requests or connections sent to another backend after one failed them.", lambda p: p["retries"],
                ("pool",))
    yield _by_status_class(rows, "rsp_pool_unserved_http_requests_total",
                           "HTTP requests answered without a backend (none available, or every one tried "
                           "failed), by status class.", "unserved", ("pool",))


def _backends(rows: list[Row]) -> Iterator[Metric]:
    names = ("pool", "backend")
    yield _by_status_class(rows, "rsp_backend_http_requests_total",
                           "HTTP requests a backend was chosen for, by status class of the response the client "
                           "got (4xx includes 499, the client left first; other: dropped without a status).",
                           "responses", names)
    state = _family("gauge", "rsp_backend_state",
                    "Backend state: 1 for the state it is in (up, down, drain), 0 for the others.",
                    (*names, "state"))
    for labels, b in rows:
        for name in BACKEND_STATES:
            state.add_metric([*labels.values(), name], 1 if b["state"] == name else 0)
    yield state
    yield _each(rows, "gauge", "rsp_backend_weight", "Effective balancing weight.", lambda b: b["weight"], names)
    yield _active_idle(rows, "rsp_backend_connections",
                       "Backend connections: active (in use by a request or TCP relay, or opening) and idle "
                       "(HTTP keep-alive pool).", names)
    yield _each(rows, "counter", "rsp_backend_connections_total",
                "Times the backend was chosen for a request or a TCP connection.", lambda b: b["connections"],
                names)
    yield _each(rows, "counter", "rsp_backend_sent_bytes_total", "Bytes written to the backend.",
                lambda b: b["bytes_sent"], names)
    yield _each(rows, "counter", "rsp_backend_received_bytes_total", "Bytes read from the backend.",
                lambda b: b["bytes_received"], names)
    yield _each(rows, "counter", "rsp_backend_connect_failures_total", "Connections to the backend that failed.",
                lambda b: b["connect_failures"], names)
    yield _each(rows, "counter", "rsp_backend_ejections_total",
                "Times passive health (failures on real traffic) took the backend out of rotation.",
                lambda b: b["ejections"], names)
    checks = _family("counter", "rsp_backend_health_checks_total", "Active health check results.",
                     (*names, "result"))
    for labels, b in rows:
        checks.add_metric([*labels.values(), "ok"], b["checks_ok"])
        checks.add_metric([*labels.values(), "fail"], b["checks_fail"])
    yield checks
    checked = [(labels, b) for labels, b in rows if b.get("last_check_time")]  # none invented before a check
    yield _each(checked, "gauge", "rsp_backend_last_check_timestamp_seconds",
                "When the last active health check finished, seconds since the Unix epoch.",
                lambda b: float(b["last_check_time"]), names)
    yield _each(checked, "gauge", "rsp_backend_last_check_ok", "1 if the last active health check passed, else 0.",
                lambda b: 1 if b["last_check"] == "ok" else 0, names)
    histogram = _family("histogram", "rsp_backend_response_seconds",
                        "Time from choosing the backend to the end of its response (HTTP).", names)
    for labels, b in rows:
        hist = b["response_time"]
        cumulative, buckets = 0, []
        for bound, count in zip([*hist["bounds"], math.inf], hist["counts"], strict=True):
            cumulative += count
            buckets.append(("+Inf" if math.isinf(bound) else repr(float(bound)), cumulative))
        histogram.add_metric(list(labels.values()), buckets=buckets, sum_value=float(hist["sum"]))
    yield histogram


# The response cache's counters (rsp.cache.stats.CacheStats, summed over the workers): field, name, help.
CACHE_COUNTERS: Final = (
    ("hits", "rsp_cache_hits_total", "Requests answered with a fresh stored response (304s from the cache to "
     "clients' conditional requests and coalesced waiters included)."),
    ("stale", "rsp_cache_stale_total", "Requests answered with a stale stored response (max-stale, "
     "stale-while-revalidate, stale-if-error, grace)."),
    ("misses", "rsp_cache_misses_total", "Requests the cache sent to the backend (stored or not)."),
    ("revalidated", "rsp_cache_revalidated_total", "Stale stored responses the backend confirmed with 304."),
    ("bypass", "rsp_cache_bypass_total", "Requests not looked up (If-Match, If-Unmodified-Since, If-Range, "
     "or a handler's rsp_cache_bypass)."),
    ("coalesced", "rsp_cache_coalesced_total", "Misses that waited for another fetch of their URI and were "
     "answered from its stored response (also counted in hits)."),
    ("stored", "rsp_cache_stores_total", "Responses written to the store."),
    ("purged", "rsp_cache_purged_total", "Stored responses removed by PURGE requests."),
)


def _caches(rows: list[Row]) -> Iterator[Metric]:
    names = ("cache",)
    for field, name, help_text in CACHE_COUNTERS:
        yield _each(rows, "counter", name, help_text, lambda c, f=field: c.get(f, 0), names)  # type: ignore[misc]
    yield _each(rows, "counter", "rsp_cache_evictions_total",
                "Stored responses evicted to make room (least recently used first).",
                lambda c: c.get("store", {}).get("evicted_here", 0), names)
    stored = [(labels, c) for labels, c in rows if "entries" in c.get("store", {})]  # none when the store failed
    yield _each(stored, "gauge", "rsp_cache_objects", "Responses in the store (the machine's: one store per cache "
                "per machine).", lambda c: c["store"]["entries"], names)
    yield _each(stored, "gauge", "rsp_cache_stored_bytes", "Bytes the stored responses are charged (page-rounded), "
                "the machine's.", lambda c: c["store"]["bytes"], names)
    yield _each(stored, "gauge", "rsp_cache_budget_bytes", "Bytes the stored responses may be charged before "
                "the least recently used are evicted.", lambda c: c["store"]["budget"], names)


def _each(rows: Iterable[Row], kind: str, name: str, help_text: str, value: Callable[[Mapping[str, Any]], float],
          names: Sequence[str] = ("listener", "mode")) -> Metric:
    family = _family(kind, name, help_text, names)
    for labels, item in rows:
        family.add_metric(list(labels.values()), value(item))
    result: Metric = family
    return result


def _by_status_class(rows: Iterable[Row], name: str, help_text: str, field: str, names: Sequence[str]) -> Metric:
    """A counter per status class (every class written, 0 when none was seen), from `item[field]`."""
    family = _family("counter", name, help_text, (*names, "code"))
    for labels, item in rows:
        for code in STATUS_LABELS:
            family.add_metric([*labels.values(), code], item[field].get(code, 0))
    result: Metric = family
    return result


def _active_idle(rows: Iterable[Row], name: str, help_text: str,
                 names: Sequence[str] = ("listener", "mode")) -> Metric:
    """A gauge of connections by state: `item["active"]` and `item["idle"]`."""
    family = _family("gauge", name, help_text, (*names, "state"))
    for labels, item in rows:
        family.add_metric([*labels.values(), "active"], item["active"])
        family.add_metric([*labels.values(), "idle"], item["idle"])
    result: Metric = family
    return result
