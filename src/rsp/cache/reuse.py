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
