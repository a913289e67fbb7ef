"""The `stats` section: where /metrics, the stats page and /stats.json are served (rsp.metrics.endpoint).

    stats = { listen = "127.0.0.1:9100", refresh = 2 }

`listen` defaults to 127.0.0.1:9100 and `refresh` (seconds between two updates of the stats page) to 2;
`stats = {}` turns the endpoint on with both defaults; no `stats` key, no endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from rsp.config.checks import Ctx, as_seconds, as_string, fields, split_host_port
from rsp.config.model import (
    DEFAULT_STATS_HOST,
    DEFAULT_STATS_PORT,
    DEFAULT_STATS_REFRESH,
    Listener,
    StatsSettings,
)

# A page that polls faster than this mostly measures itself; slower than this it stops being live.
MIN_REFRESH: Final = 0.5
MAX_REFRESH: Final = 3600.0


def parse_stats(value: Any, ctx: Ctx, listeners: Sequence[Listener]) -> StatsSettings | None:
    """The `stats` table, or None when the key is absent. Refuses a `listen` that a proxy listener uses."""
    if value is None:
        return None
    f = fields(value, "stats", ctx, {"listen", "refresh"})
    host, port = DEFAULT_STATS_HOST, DEFAULT_STATS_PORT
    if "listen" in f:
        host, port = split_host_port(as_string(f["listen"], "stats.listen", ctx), "stats.listen", ctx)
    refresh = DEFAULT_STATS_REFRESH
    if "refresh" in f:
        refresh = as_seconds(f["refresh"], "stats.refresh", ctx)
        if not MIN_REFRESH <= refresh <= MAX_REFRESH:
            ctx.fail("stats.refresh", f"stats.refresh must be between {MIN_REFRESH:g} and {MAX_REFRESH:g} seconds")
    for listener in listeners:
        if listener.port == port and (listener.host == host or "0.0.0.0" in (listener.host, host)
                                      or "::" in (listener.host, host)):
            ctx.fail("stats.listen", f"stats.listen {host}:{port} is also the address of listener "
                                     f"{listener.key or listener.address}")
    return StatsSettings(host, port, refresh)
