"""Freshness lifetime and age of a stored response (RFC 9111 §4.2), as a shared cache computes them.

Every function takes the times it needs: `request_time` (when the request was sent on), `response_time` (when
the response head arrived) and `now`, all POSIX seconds on the same clock (the store is shared by processes,
so the wall clock, not a per-process monotonic one).
"""

from __future__ import annotations

from typing import Final

from rsp.cache.dates import parse_http_date
from rsp.cache.directives import CacheControl, delta_seconds
from rsp.pipeline.messages import Header, header_get, header_values

# RFC 9110 §15.1: the status codes "heuristically cacheable" (cacheable by default).
HEURISTIC_STATUSES: Final = frozenset({200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501})
# RFC 9111 §4.2.2: "a typical setting of this fraction might be 10%" of the time since Last-Modified.
HEURISTIC_FRACTION: Final = 0.1
# A heuristic lifetime is capped at one day: past 24 h RFC 7234 required a Warning 113, and Squid's and
# Varnish's heuristics stay well under a day too; a longer life needs the origin's explicit say.
HEURISTIC_MAX: Final = 86400.0


def date_value(headers: list[Header], response_time: float) -> float:
    """The Date field, or the time the response was received when it is absent or invalid (RFC 9110 §6.6.1)."""
    raw = header_get(headers, b"date")
    date = parse_http_date(raw, response_time) if raw is not None else None
    return response_time if date is None else date


def age_value(headers: list[Header]) -> int:
    """The Age field (§5.1): the first member of a list, and an invalid value is ignored (0)."""
    raw = header_get(headers, b"age")
    if raw is None:
        return 0
    seconds = delta_seconds(raw.split(b",", 1)[0].strip(b" \t"))
    return 0 if seconds is None else seconds


def initial_age(headers: list[Header], request_time: float, response_time: float) -> float:
    """`corrected_initial_age` of §4.2.3: the age the response already had when it arrived."""
    apparent_age = max(0.0, response_time - date_value(headers, response_time))
    response_delay = max(0.0, response_time - request_time)
    corrected_age_value = age_value(headers) + response_delay
    return max(apparent_age, corrected_age_value)


def current_age(corrected_initial_age: float, response_time: float, now: float) -> float:
    """§4.2.3: the initial age plus the time the response has been resident in this cache."""
    return corrected_initial_age + max(0.0, now - response_time)


def freshness_lifetime(status: int, headers: list[Header], cc: CacheControl, response_time: float,
                       heuristic: bool) -> float:
    """§4.2.1 for a shared cache: s-maxage, then max-age, then Expires - Date, then (only when `heuristic` is
    configured) 10% of Date - Last-Modified for a heuristically cacheable status or a `public` response.
    Invalid or conflicting freshness information gives 0: stale at once (§4.2.1, §5.3)."""
    if cc.s_maxage is not None:
        return float(cc.s_maxage)
    if cc.max_age is not None:
        return float(cc.max_age)
    expires = header_values(headers, b"expires")
    if expires:
        if len(set(expires)) > 1:  # two different Expires: the response is considered stale (§4.2.1)
            return 0.0
        when = parse_http_date(expires[0], response_time)
        if when is None:  # "0", "-1", garbage: already expired (§5.3)
            return 0.0
        return max(0.0, when - date_value(headers, response_time))
    if heuristic and (status in HEURISTIC_STATUSES or cc.public):
        raw = header_get(headers, b"last-modified")
        modified = parse_http_date(raw, response_time) if raw is not None else None
        date = date_value(headers, response_time)
        if modified is not None and modified < date:
            return min(HEURISTIC_MAX, (date - modified) * HEURISTIC_FRACTION)
    return 0.0


def has_explicit_expiration(headers: list[Header], cc: CacheControl) -> bool:
    """max-age, s-maxage or Expires present (valid or not): what §3 and §4.2.2 call explicit expiration."""
    return cc.s_maxage is not None or cc.max_age is not None or header_get(headers, b"expires") is not None
