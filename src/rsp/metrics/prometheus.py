"""Render a (merged) snapshot as Prometheus text exposition format 0.0.4.

Pure: rsp.metrics.snapshot's dict (one process's, or rsp.metrics.merge's for the machine) and the machine
facts in, text out. Format (https://prometheus.io/docs/instrumenting/exposition_formats/): per metric
family a `# HELP` and a `# TYPE` line, then its samples `name{label="value",...} number`; label values
escape backslash, double quote and newline; HELP text escapes backslash and newline; a histogram has
cumulative `_bucket{le="..."}` samples ending with `le="+Inf"`, then `_sum` and `_count`. Every name starts
with `rsp_`; the list with their meaning is docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
BACKEND_STATES: Final = ("up", "down", "drain")
STATUS_LABELS: Final = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")

Labels = Mapping[str, str]


class _Family:
    """One metric family being written: its HELP/TYPE header once, then its samples."""

    def __init__(self, out: list[str], name: str, kind: str, help_text: str) -> None:
        self.out = out
        self.name = name
        out.append(f"# HELP {name} {escape_help(help_text)}")
        out.append(f"# TYPE {name} {kind}")

    def sample(self, labels: Labels, value: float, suffix: str = "") -> None:
        self.out.append(f"{self.name}{suffix}{format_labels(labels)} {format_value(value)}")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(str(v))}"' for k, v in labels.items()) + "}"


def format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def render(stats: Mapping[str, Any], machine: Mapping[str, Any]) -> str:
    """The text of `/metrics` for snapshot `stats` and the machine facts `machine` (rsp.metrics.endpoint)."""
    out: list[str] = []
    _machine(out, machine)
    listeners = stats.get("listeners", [])
    _listeners(out, listeners)
    pools = stats.get("pools", [])
    _pools(out, pools)
    _backends(out, [(pool["name"], b) for pool in pools for b in pool["backends"]])
    return "\n".join(out) + "\n"


def _machine(out: list[str], machine: Mapping[str, Any]) -> None:
    _Family(out, "rsp_start_time_seconds", "gauge", "When rsp started, seconds since the Unix epoch.").sample(
        {}, float(machine.get("started", 0.0)))
    _Family(out, "rsp_workers", "gauge", "Worker processes serving traffic.").sample(
        {}, len(machine.get("workers", [])))
    _Family(out, "rsp_reloads_total", "counter", "Configuration reloads done.").sample(
        {}, int(machine.get("reloads", 0)))
    _Family(out, "rsp_worker_restarts_total", "counter", "Worker processes restarted after they died.").sample(
        {}, int(machine.get("worker_restarts", 0)))
    last = machine.get("last_reload")
    if last is not None:
        _Family(out, "rsp_last_reload_timestamp_seconds", "gauge",
                "When the configuration was last reloaded, seconds since the Unix epoch.").sample({}, float(last))


def _listeners(out: list[str], listeners: Iterable[Mapping[str, Any]]) -> None:
    rows = [({"listener": item["name"], "mode": item["mode"]}, item) for item in listeners]
    _each(out, rows, "rsp_listener_connections_total", "counter", "Client connections accepted.",
          lambda i: i["accepted"])
    _active_idle(out, rows, "rsp_listener_connections",
                 "Client connections open now: active (a request or a TCP relay in progress) or idle "
                 "(HTTP keep-alive between requests).")
    _each(out, rows, "rsp_listener_received_bytes_total", "counter", "Bytes read from clients.",
          lambda i: i["bytes_received"])
    _each(out, rows, "rsp_listener_sent_bytes_total", "counter", "Bytes written to clients.",
          lambda i: i["bytes_sent"])
    _each(out, rows, "rsp_listener_http2_connections_total", "counter",
          "Client connections accepted that spoke HTTP/2 (ALPN h2 or prior knowledge).",
          lambda i: i.get("http2_connections", 0))
    _each(out, rows, "rsp_listener_http2_streams_total", "counter",
          "HTTP/2 streams clients opened and rsp served (one request each; refused ones not counted).",
          lambda i: i.get("http2_streams", 0))
    http = [(labels, item) for labels, item in rows if item["mode"] == "http"]
    _by_status_class(out, http, "rsp_listener_http_responses_total",
                     "HTTP responses to clients by status class, refusals before routing included "
                     "(4xx includes 499, the client left first; other: dropped without a status).", "responses")


def _pools(out: list[str], pools: Iterable[Mapping[str, Any]]) -> None:
    rows = [({"pool": pool["name"]}, pool) for pool in pools]
    _each(out, rows, "rsp_pool_retries_total", "counter",
          "Requests or connections sent to another backend after one failed them.", lambda p: p["retries"])
    _by_status_class(out, rows, "rsp_pool_unserved_http_requests_total",
                     "HTTP requests answered without a backend (none available, or every one tried failed), "
                     "by status class.", "unserved")


def _backends(out: list[str], backends: list[tuple[str, Mapping[str, Any]]]) -> None:
    rows = [({"pool": pool, "backend": b["name"]}, b) for pool, b in backends]
    _by_status_class(out, rows, "rsp_backend_http_requests_total",
                     "HTTP requests a backend was chosen for, by status class of the response the client got "
                     "(4xx includes 499, the client left first; other: dropped without a status).", "responses")
    family = _Family(out, "rsp_backend_state", "gauge",
                     "Backend state: 1 for the state it is in (up, down, drain), 0 for the others.")
    for labels, b in rows:
        for state in BACKEND_STATES:
            family.sample({**labels, "state": state}, 1 if b["state"] == state else 0)
    _each(out, rows, "rsp_backend_weight", "gauge", "Effective balancing weight.", lambda b: b["weight"])
    _active_idle(out, rows, "rsp_backend_connections",
                 "Backend connections: active (in use by a request or TCP relay, or opening) and idle "
                 "(HTTP keep-alive pool).")
    _each(out, rows, "rsp_backend_connections_total", "counter",
          "Times the backend was chosen for a request or a TCP connection.", lambda b: b["connections"])
    _each(out, rows, "rsp_backend_sent_bytes_total", "counter", "Bytes written to the backend.",
          lambda b: b["bytes_sent"])
    _each(out, rows, "rsp_backend_received_bytes_total", "counter", "Bytes read from the backend.",
          lambda b: b["bytes_received"])
    _each(out, rows, "rsp_backend_connect_failures_total", "counter", "Connections to the backend that failed.",
          lambda b: b["connect_failures"])
    _each(out, rows, "rsp_backend_ejections_total", "counter",
          "Times passive health (failures on real traffic) took the backend out of rotation.",
          lambda b: b["ejections"])
    family = _Family(out, "rsp_backend_health_checks_total", "counter", "Active health check results.")
    for labels, b in rows:
        family.sample({**labels, "result": "ok"}, b["checks_ok"])
        family.sample({**labels, "result": "fail"}, b["checks_fail"])
    checked = [(labels, b) for labels, b in rows if b.get("last_check_time")]
    _each(out, checked, "rsp_backend_last_check_timestamp_seconds", "gauge",
          "When the last active health check finished, seconds since the Unix epoch.",
          lambda b: float(b["last_check_time"]))
    _each(out, checked, "rsp_backend_last_check_ok", "gauge", "1 if the last active health check passed, else 0.",
          lambda b: 1 if b["last_check"] == "ok" else 0)
    family = _Family(out, "rsp_backend_response_seconds", "histogram",
                     "Time from choosing the backend to the end of its response (HTTP).")
    for labels, b in rows:
        hist = b["response_time"]
        cumulative = 0
        for bound, count in zip([*hist["bounds"], math.inf], hist["counts"], strict=True):
            cumulative += count
            family.sample({**labels, "le": format_value(float(bound))}, cumulative, "_bucket")
        family.sample(labels, float(hist["sum"]), "_sum")
        family.sample(labels, hist["count"], "_count")


def _each(out: list[str], rows: list[tuple[dict[str, str], Mapping[str, Any]]], name: str, kind: str,
          help_text: str, value: Callable[[Mapping[str, Any]], float]) -> None:
    family = _Family(out, name, kind, help_text)
    for labels, item in rows:
        family.sample(labels, value(item))


def _by_status_class(out: list[str], rows: list[tuple[dict[str, str], Mapping[str, Any]]], name: str,
                     help_text: str, field: str) -> None:
    """A counter per status class (every class written, 0 when none was seen), from `item[field]`."""
    family = _Family(out, name, "counter", help_text)
    for labels, item in rows:
        for code in STATUS_LABELS:
            family.sample({**labels, "code": code}, item[field].get(code, 0))


def _active_idle(out: list[str], rows: list[tuple[dict[str, str], Mapping[str, Any]]], name: str,
                 help_text: str) -> None:
    """A gauge of connections by state: `item["active"]` and `item["idle"]`."""
    family = _Family(out, name, "gauge", help_text)
    for labels, item in rows:
        family.sample({**labels, "state": "active"}, item["active"])
        family.sample({**labels, "state": "idle"}, item["idle"])
