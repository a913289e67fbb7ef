"""May a stored response answer this request without the origin? RFC 9111 §4 (§4.2 freshness, §4.2.4 serving
stale, §5.2.1 request directives, §5.2.2 response directives).
"""

from __future__ import annotations

from typing import Final

from rsp.cache.directives import CacheControl
from rsp.cache.entry import MUST_REVALIDATE, NO_CACHE

FRESH: Final = "fresh"  # serve it (HIT)
STALE_OK: Final = "stale"  # stale, but the client's max-stale accepts it and nothing forbids it (STALE)
VALIDATE: Final = "validate"  # ask the origin first (conditional request when it has validators)


def reuse(flags: int, lifetime: float, age: float, request_cc: CacheControl) -> str:
    if flags & NO_CACHE or request_cc.no_cache:  # §5.2.2.4, §5.2.1.4
        return VALIDATE
    if request_cc.max_age is not None and age > request_cc.max_age:  # §5.2.1.1
        return VALIDATE
    if request_cc.min_fresh is not None and lifetime - age < request_cc.min_fresh:  # §5.2.1.3
        return VALIDATE
    if lifetime > age:  # §4.2: fresh
        return FRESH
    # Stale. must-revalidate / proxy-revalidate / s-maxage forbid serving it without validation (§4.2.4).
    if flags & MUST_REVALIDATE:
        return VALIDATE
    if request_cc.max_stale is not None and age - lifetime <= request_cc.max_stale:  # §5.2.1.2
        return STALE_OK
    return VALIDATE


def while_revalidating(flags: int, lifetime: float, age: float, request_cc: CacheControl, window: float) -> bool:
    """May a stale stored response answer now while a background fetch revalidates it? RFC 5861 §3
    (`stale-while-revalidate=window`, or the configured grace: Varnish's grace serves stale while it fetches):
    within `window` seconds past its freshness, unless the response must be revalidated first (no-cache,
    must-revalidate, proxy-revalidate, s-maxage: RFC 9111 §4.2.4, §5.2.2.4) or the request asks for a fresher
    one than stored (no-cache, max-age, min-fresh: §5.2.1), which a stale answer would not honour."""
    if window <= 0 or flags & (MUST_REVALIDATE | NO_CACHE):
        return False
    if request_cc.no_cache or request_cc.max_age is not None or request_cc.min_fresh is not None:
        return False
    staleness = age - lifetime
    return 0 <= staleness <= window
