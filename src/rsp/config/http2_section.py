"""The `http2` key of a listener (rsp.config.model.Http2Settings, docs/http2.md):

    listen = { { port = 443, mode = "http", tls = {...}, http2 = true } }            -- ALPN h2 + http/1.1
    listen = { { port = 8080, mode = "http", http2 = "prior-knowledge" } }           -- plain, preface sniffed
    listen = { { port = 443, mode = "http", tls = {...},
                 http2 = { max_concurrent_streams = 100, idle_timeout = 30 } } }    -- limits (mode "alpn")

`http2 = false` or no key: HTTP/1.1 only. The default is off (as nginx's; Caddy's is on): see docs/http2.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from rsp.config.checks import Ctx, as_bool, as_choice, as_int, as_seconds, fields
from rsp.config.model import HTTP2_MODES, Http2Settings

# Keys of `http2 = {...}` besides `mode`: (kind, minimum, maximum). RFC 9113 §6.5.2 bounds the SETTINGS
# values; the rest only need to be positive.
_INT_KEYS: Final = {
    "max_concurrent_streams": (1, 2**31 - 1),
    "initial_window_size": (1, 2**31 - 1),
    "max_frame_size": (16384, 2**24 - 1),
    "header_table_size": (0, 2**32 - 1),
    "max_header_list_size": (1024, 2**32 - 1),
    "max_header_block_size": (1024, 2**32 - 1),
    "max_header_frames": (1, 64),  # h2 itself refuses more than 64 frames in one block
    "max_streams_per_connection": (1, 2**31 - 1),
    "max_resets": (1, 2**31 - 1),
    "max_settings": (1, 2**31 - 1),
    "max_pings": (1, 2**31 - 1),
    "max_priority": (1, 2**31 - 1),
    "max_empty_data": (1, 2**31 - 1),
    "max_window_updates": (1, 2**31 - 1),
    "max_unknown_frames": (1, 2**31 - 1),
    "max_closed_stream_data": (1, 2**31 - 1),
}
_SECONDS_KEYS: Final = ("flood_interval", "idle_timeout", "send_timeout", "header_timeout")



def parse_http2(value: Any, key: str, ctx: Ctx, mode: str, tls: bool) -> Http2Settings | None:
    """A listener's `http2` value (`key` is `listen[N].http2`); None for HTTP/1.1 only."""
    if value is None:
        return None
    if isinstance(value, bool):
        settings = Http2Settings() if as_bool(value, key, ctx) else None
    elif isinstance(value, str):
        settings = Http2Settings(mode=as_choice(value, HTTP2_MODES, key, ctx))
    else:
        f = fields(value, key, ctx, {"mode", *_INT_KEYS, *_SECONDS_KEYS})
        changes: dict[str, Any] = {}
        if "mode" in f:
            changes["mode"] = as_choice(f["mode"], HTTP2_MODES, f"{key}.mode", ctx)
        for name, (low, high) in _INT_KEYS.items():
            if name in f:
                changes[name] = as_int(f[name], f"{key}.{name}", ctx, minimum=low, maximum=high)
        for name in _SECONDS_KEYS:
            if name in f:
                changes[name] = as_seconds(f[name], f"{key}.{name}", ctx)
        settings = dataclasses.replace(Http2Settings(), **changes)
    if settings is None:
        return None
    if mode != "http":
        ctx.fail(key, f"{key} needs mode = \"http\" (HTTP/2 is an HTTP mode feature)")
    if settings.mode == "alpn" and not tls:
        ctx.fail(key, f"{key} = true needs tls on the listener (ALPN); a plain listener takes "
                      "http2 = \"prior-knowledge\"")
    if settings.mode == "prior-knowledge" and tls:
        ctx.fail(key, f"{key} = \"prior-knowledge\" is for a plain listener; with tls, use http2 = true (ALPN)")
    return settings
