"""The variables a request's handlers set to steer the response cache (a Lua handler's `ngx.var.rsp_cache_*`),
and the ctx entry they travel in from the handler's filter to the cache's (docs/cache.md, "Lua").

OpenResty users steer nginx's cache with directives whose values are variables their Lua sets: `proxy_cache_key`,
`proxy_cache_bypass`, `proxy_no_cache`, `proxy_cache_valid`. rsp has no directive taking variables, so the
variables are rsp's own, named `rsp_` like `rsp_pool` (a name nginx can never define) and after the directive
each replaces:

    rsp_cache_key       the primary key instead of the target URI        proxy_cache_key, Varnish's vcl_hash
    rsp_cache_bypass    "1": do not look up (the response may be stored)  proxy_cache_bypass, Varnish's pass
    rsp_cache_no_store  "1": do not store the response                    proxy_no_cache, beresp.uncacheable
    rsp_cache_ttl       seconds the response stays fresh, instead of     proxy_cache_valid / X-Accel-Expires,
                        what its fields say                              Varnish's beresp.ttl

A flag is on when its value is non-empty and not "0" (nginx's rule for proxy_cache_bypass and proxy_no_cache).
They are set in rewrite or access: the cache looks the request up right after the access handlers (and
decides on storing from what was set then). This module is a leaf: the Lua bridge writes through it, the cache
reads through it, and neither imports the other.
"""

from __future__ import annotations

from typing import Final

CACHE_KEY: Final = b"rsp_cache_key"
CACHE_BYPASS: Final = b"rsp_cache_bypass"
CACHE_NO_STORE: Final = b"rsp_cache_no_store"
CACHE_TTL: Final = b"rsp_cache_ttl"
CACHE_VARIABLES: Final = frozenset({CACHE_KEY, CACHE_BYPASS, CACHE_NO_STORE, CACHE_TTL})
# The exchange's ctx entry holding what was set: {name: value}, absent when nothing was.
CTX_CACHE_VARS: Final = "rsp.cache.vars"
# Where they may be set: before the cache's lookup (request phases run the Lua handlers before the cache).
SETTABLE_IN: Final = frozenset({"rewrite", "access"})
# The longest TTL (a year): a larger one is a mistake, not a policy.
MAX_TTL: Final = 365 * 24 * 3600


def set_cache_var(ctx: dict[str, object], phase: str, name: bytes, value: bytes | None) -> str | None:
    """Set (None: unset) cache variable `name` in `ctx`; the error to raise, or None when done."""
    if phase not in SETTABLE_IN:
        return f"ngx.var.{name.decode()} cannot be changed in {phase} (the cache has looked the request up)"
    if name == CACHE_TTL and value is not None and not (value.isdigit() and int(value) <= MAX_TTL):
        return f"ngx.var.rsp_cache_ttl must be whole seconds from 0 to {MAX_TTL}, not {value!r}"
    found = ctx.get(CTX_CACHE_VARS)
    values: dict[bytes, bytes] = found if isinstance(found, dict) else {}
    if value is None:
        values.pop(name, None)
    else:
        values[name] = value
    ctx[CTX_CACHE_VARS] = values
    return None


def cache_var(ctx: dict[str, object], name: bytes) -> bytes | None:
    found = ctx.get(CTX_CACHE_VARS)
    return found.get(name) if isinstance(found, dict) else None


def flag(value: bytes | None) -> bool:
    """A flag variable is on: non-empty and not "0" (nginx)."""
    return bool(value) and value != b"0"
