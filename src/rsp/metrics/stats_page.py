"""The live stats page: one self-contained HTML document (inline CSS and JS, no external asset), kept in
`stats_page.html` beside this module (package data, read with importlib.resources: an HTML file is easier
to edit, and to lint, than a Python string).

In the spirit of HAProxy's stats page: per pool a table of its backends with their state in colour (UP green,
DOWN red, DRAIN amber), sessions, requests, errors, last health check, weight; the listeners; the request
rate with a graph of the last minutes; workers, reloads, last reload. The page fetches `stats.json` every
`refresh` seconds and redraws.

Decisions:
- The graph's history lives in the page (a ring of the last `HISTORY_SECONDS` of polls), not on the server:
  the server keeps no state per viewer and no timer, and a scrape-only deployment pays nothing for the page.
  The price is that the graph starts empty when the page is opened.
- XSS: the server puts no name into the HTML. Every pool, backend and listener name (they come from the
  config) reaches the page as JSON and is written with `textContent` / `setAttribute`, never as markup, so a
  name like `<img onerror=...>` shows as text. The one value substituted into the document is the refresh
  interval, a number formatted by Python.
- Phones: a viewport meta, and below 700 px every table row becomes a card of "label: value" lines, so the
  page never scrolls sideways.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Final

# How much request-rate history the page keeps and draws (HAProxy's page has none; "the last minutes").
HISTORY_SECONDS: Final = 600

PAGE_FILE: Final = "stats_page.html"


@cache
def template() -> str:
    """The page's source, with its __REFRESH__ and __HISTORY__ placeholders (read once per process)."""
    return resources.files("rsp.metrics").joinpath(PAGE_FILE).read_text(encoding="utf-8")


def page(refresh: float) -> bytes:
    """The page's bytes, polling every `refresh` seconds. Nothing from the config but this number is in it."""
    return (template().replace("__REFRESH__", repr(float(refresh)))
            .replace("__HISTORY__", str(HISTORY_SECONDS)).encode("utf-8"))
