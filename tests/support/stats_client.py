"""Helpers of the metrics tests: fetch from rsp's stats endpoint and read /metrics back."""

from __future__ import annotations

import http.client
import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = 5.0

Table = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def metrics(port: int) -> Table:
    status, headers, body = fetch(port, "/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    table: Table = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            table[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return table


def value(table: Table, name: str, **labels: str) -> float:
    return table[(name, frozenset(labels.items()))]


def stats_json(port: int) -> dict[str, Any]:
    status, _, body = fetch(port, "/stats.json")
    assert status == 200, body
    document: dict[str, Any] = json.loads(body)
    return document


