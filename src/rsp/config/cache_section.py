"""The `caches` section and the `cache` key of listeners and routes (rsp.cache, docs/cache.md).

    caches = { pages = { size = "256m", max_object = "8m", heuristic = false, cookies = false,
                         header = "X-Cache", path = "/var/cache/rsp/pages.lmdb" } }
    listen = { { port = 80, mode = "http", cache = "pages" } }
    routes = { { path = "/static/", pool = "web", cache = "pages" } }

Sizes are bytes, or a string with a k/m/g suffix (powers of 1024, like nginx's `max_size`). Without `path` the
store is memory-backed (rsp.cache.wiring).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from rsp.config import model
from rsp.config.checks import Ctx, as_bool, as_cidrs, as_int, as_seconds, as_string, as_table, fields

CACHE_KEYS: Final = {"size", "path", "max_object", "heuristic", "cookies", "header", "grace", "purge"}
# Below 1 MiB LMDB's own pages take a large share of the map and nothing useful fits.
MIN_CACHE_SIZE: Final = 1024 * 1024
# The map is address space reserved in every worker: 1 TiB is far above any cache rsp's RAM or disk holds
# and far below the 128 TiB a 64-bit Linux process can map.
MAX_CACHE_SIZE: Final = 1 << 40
# rsp.cache.store keeps entries under this share of `size` (its DATA_FRACTION); an object must fit in it.
STORE_DATA_FRACTION: Final = 0.6
_SIZE: Final = re.compile(r"(\d+)\s*([kmg]?)b?", re.IGNORECASE)
_UNITS: Final = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def as_size(value: Any, key: str, ctx: Ctx) -> int:
    """Bytes, from an integer or a string like "256m"."""
    if isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if not m:
            ctx.fail(key, f"{key} must be a size like \"256m\", \"8m\", \"512k\" or a number of bytes, got {value!r}")
        return int(m[1]) * _UNITS[m[2].lower()]
    return as_int(value, key, ctx, minimum=0)


def parse_caches(value: Any, ctx: Ctx) -> dict[str, model.CacheSettings]:
    if value is None:
        return {}
    out: dict[str, model.CacheSettings] = {}
    for name, spec in as_table(value, "caches", ctx).items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            ctx.fail("caches", f"cache names must be strings of letters, digits, '-' and '_', got {name!r}")
        key = f"caches.{name}"
        f = fields(spec, key, ctx, CACHE_KEYS)
        d = model.CacheSettings(name)
        size = as_size(f.get("size", d.size), f"{key}.size", ctx)
        if not MIN_CACHE_SIZE <= size <= MAX_CACHE_SIZE:
            ctx.fail(f"{key}.size", f"{key}.size must be between 1m and 1024g, got {size} bytes")
        max_object = as_size(f.get("max_object", min(d.max_object, int(size * STORE_DATA_FRACTION))),
                             f"{key}.max_object", ctx)
        if not 0 < max_object <= size * STORE_DATA_FRACTION:
            ctx.fail(f"{key}.max_object", f"{key}.max_object must be above 0 and at most "
                     f"{int(STORE_DATA_FRACTION * 100)}% of {key}.size ({int(size * STORE_DATA_FRACTION)} bytes)")
        path = as_string(f.get("path", ""), f"{key}.path", ctx)
        if path and not path.startswith("/"):
            ctx.fail(f"{key}.path", f"{key}.path must be an absolute file path, got {path!r}")
        header = as_string(f.get("header", d.header), f"{key}.header", ctx)
        if header and not _TOKEN.fullmatch(header):
            ctx.fail(f"{key}.header", f"{key}.header must be a header field name (or \"\" for none), got {header!r}")
        out[name] = model.CacheSettings(
            name=name, size=size, path=path, max_object=max_object,
            heuristic=as_bool(f.get("heuristic", d.heuristic), f"{key}.heuristic", ctx),
            cookies=as_bool(f.get("cookies", d.cookies), f"{key}.cookies", ctx),
            header=header, purge=as_cidrs(f.get("purge", {}), f"{key}.purge", ctx),
            grace=as_seconds(f.get("grace", d.grace), f"{key}.grace", ctx, allow_zero=True), key=key)
    paths = [c.path for c in out.values() if c.path]
    if len(paths) != len(set(paths)):
        ctx.fail("caches", "two caches have the same path: each cache needs its own store file")
    return out


def check_cache_uses(caches: dict[str, model.CacheSettings], listeners: Sequence[model.Listener],
                     routes: Sequence[model.Route], ctx: Ctx) -> None:
    """Every `cache = "NAME"` names a defined cache, on an HTTP listener."""
    for i, listener in enumerate(listeners, start=1):
        if not listener.cache:
            continue
        key = f"{listener.key or f'listen[{i}]'}.cache"
        if listener.cache not in caches:
            ctx.fail(key, f"{key} names cache '{listener.cache}', which is not defined in caches")
        if listener.mode != "http":
            ctx.fail(key, f"{key}: a cache needs mode = \"http\" on the listener")
    for i, route in enumerate(routes, start=1):
        if route.cache and route.cache not in caches:
            ctx.fail(f"routes[{i}].cache", f"routes[{i}].cache names cache '{route.cache}', which is not defined "
                     "in caches")
