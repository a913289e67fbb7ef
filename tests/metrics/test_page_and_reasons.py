"""The stats page comes from a package data file (rsp/metrics/stats_page.html, shipped by pyproject's
package-data), and the reason phrases (rsp.http1.reasons: the endpoint's and the error pages') from
http.HTTPStatus (but RFC 9110's two renamed ones)."""

from __future__ import annotations

import tomllib
from http import HTTPStatus
from pathlib import Path

from rsp.http1.error_pages import error_response
from rsp.http1.reasons import RFC9110_RENAMED, reason
from rsp.metrics.endpoint import response
from rsp.metrics.stats_page import HISTORY_SECONDS, PAGE_FILE, page

ROOT = Path(__file__).resolve().parents[2]


def test_the_page_is_the_package_data_file_with_its_two_values_filled_in() -> None:
    source = (ROOT / "src" / "rsp" / "metrics" / PAGE_FILE).read_text(encoding="utf-8")
    assert "__REFRESH__" in source and "__HISTORY__" in source
    body = page(2.5).decode("utf-8")
    assert body == source.replace("__REFRESH__", "2.5").replace("__HISTORY__", str(HISTORY_SECONDS))
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["rsp"]
    assert f"metrics/{PAGE_FILE}" in shipped


def test_reason_phrases_are_http_statuss_but_rfc_9110s_renamed_two() -> None:
    for status in HTTPStatus:
        expected = RFC9110_RENAMED.get(status.value, status.phrase)
        assert reason(status.value) == expected
    assert reason(413) == "Content Too Large" and reason(414) == "URI Too Long"
    assert reason(599) == "Error"
    assert response(405, "text/plain", b"").startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    # one table: the error pages say the same phrases as the stats endpoint
    assert error_response(413).startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert error_response(502).startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
