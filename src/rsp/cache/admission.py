"""What a miss stores: the decision (RFC 9111 §3) and the StoredResponse it becomes, from the request and the
backend's response head, in one call.

Compiled (native_modules.txt): CacheFilter stays interpreted (it subclasses the interpreted Filter, see
docs/performance.md), so the work of every stored miss lives here, where it runs as native code: parsing the
response's Cache-Control, its freshness lifetime and initial age, the storability checks, the Vary selecting
values and the stored field lines.
"""

from __future__ import annotations

from typing import Final

from rsp.cache.directives import CacheControl, parse_cache_control
from rsp.cache.entry import MUST_REVALIDATE, NO_CACHE, StoredResponse
from rsp.cache.freshness import freshness_lifetime, initial_age
from rsp.cache.storable import refusal
from rsp.cache.vary import selecting, vary_names
from rsp.pipeline.messages import Header, header_values

# Fields never stored: Age is computed on every hit (§4.2.3), Content-Length is the codec's (from the
# stored body), Set-Cookie belongs to the one client whose request fetched the response.
NOT_STORED: Final = frozenset({b"age", b"content-length", b"set-cookie"})


# Every response field the decision reads (vary_names, the Cache-Control parse, freshness_lifetime,
# initial_age, refusal): admit hands them only these lines. A policy function that reads another response
# field must add it here (tests/cache/test_admission.py checks the decisions against the whole field list).
POLICY_FIELDS: Final = frozenset({b"age", b"cache-control", b"date", b"etag", b"expires", b"last-modified",
                                  b"set-cookie", b"vary"})


# A backend sends the same Cache-Control line on response after response: its parse (the CacheControl, read
# only here, never handed out) is kept per line. Bounded; emptied when full (like rsp.cache.dates' memo).
_PARSED: Final[dict[bytes, CacheControl]] = {}
PARSED_MEMO_SIZE: Final = 256
PARSED_MEMO_LINE: Final = 256


def _response_cc(headers: list[Header]) -> CacheControl:
    values = header_values(headers, b"cache-control")
    if len(values) != 1 or len(values[0]) > PARSED_MEMO_LINE:
        return parse_cache_control(values)
    line = values[0]
    cc = _PARSED.get(line)
    if cc is None:
        if len(_PARSED) >= PARSED_MEMO_SIZE:
            _PARSED.clear()
        cc = _PARSED[line] = parse_cache_control(values)
    return cc


def response_flags(cc: CacheControl) -> int:
    """The entry flags of a response's directives."""
    flags = 0
    if cc.must_revalidate or cc.proxy_revalidate or cc.s_maxage is not None:  # §4.2.4: never serve stale
        flags |= MUST_REVALIDATE
    if cc.no_cache:
        flags |= NO_CACHE
    return flags


class _Name:
    """What admit needs of one field name: lower-cased, whether the decision reads it (a response's) and whether
    it is stored (a response's); the access phase takes a request's names lower-cased from the same memo."""

    __slots__ = ("kept", "lower", "policy")

    def __init__(self, lower: bytes) -> None:
        self.lower = lower
        self.policy = lower in POLICY_FIELDS
        self.kept = lower not in NOT_STORED


# A field name as the peer spelt it -> its _Name: backends send the same few names on every response, clients
# on every request, and one dict lookup costs less than a lower() and two set tests per field (every stored
# miss). Bounded; emptied when full.
_NAMES: Final[dict[bytes, _Name]] = {}
NAMES_MEMO_SIZE: Final = 512


def _name(spelt: bytes) -> _Name:
    known = _NAMES.get(spelt)
    if known is None:
        if len(_NAMES) >= NAMES_MEMO_SIZE:
            _NAMES.clear()
        known = _NAMES[spelt] = _Name(spelt.lower())
    return known


def lower_name(spelt: bytes) -> bytes:
    """`spelt`.lower(), from the memo (a request's field names too: the cache's access phase)."""
    return _name(spelt).lower


def stored_headers(headers: list[Header], cc: CacheControl, label: bytes) -> list[Header]:
    """The field lines kept: all but NOT_STORED, the fields no-cache / private name (§5.2.2.4, §5.2.2.7) and
    the cache's own label field (`label`, lower-case; b"" for none)."""
    return _kept(headers, [_name(name) for name, _ in headers], cc, label)


def _kept(headers: list[Header], names: list[_Name], cc: CacheControl, label: bytes) -> list[Header]:
    """stored_headers, given the field names' _Name (`names[i]` is `headers[i]`'s)."""
    qualified = cc.no_cache_fields or cc.private_fields
    out: list[Header] = []
    for i, known in enumerate(names):
        lower = known.lower
        if not known.kept or lower == label:
            continue
        if qualified and (lower in cc.no_cache_fields or lower in cc.private_fields):
            continue
        out.append(headers[i])
    return out


def admit(url: bytes, method: bytes, request_headers: list[Header], request_cc: CacheControl, status: int,
          reason: bytes, response_headers: list[Header], body_length: int, request_time: float, now: float, *,
          heuristic: bool, cookies: bool, max_object: int, label: bytes,
          ttl: float | None = None) -> StoredResponse | None:
    """The entry to collect the body into (its body still empty), or None when the response may not be stored
    (rsp.cache.storable.refusal) or is known to be larger than `max_object` (`body_length` -1: unknown yet).
    `ttl`, when a handler set one (rsp.pipeline.cache_vars, nginx's proxy_cache_valid), stands for the
    response's freshness lifetime; it never overrides a refusal."""
    if body_length > max_object:
        return None
    # The field names lower-cased once (stored_headers needs them all), and the decision's functions given
    # only the POLICY_FIELDS lines: each of them scans its list with a lower() per line, six scans or more.
    spelt: list[_Name] = []
    policy: list[Header] = []
    for name, value in response_headers:
        known = _name(name)
        spelt.append(known)
        if known.policy:
            policy.append((known.lower, value))
    names = vary_names(policy)
    if names is None:  # Vary: * (refusal's VARY_STAR, decided here once: refusal is told not to ask again)
        return None
    cc = _response_cc(policy)
    lifetime = ttl if ttl is not None else freshness_lifetime(status, policy, cc, now, heuristic)
    if refusal(method, status, request_headers, request_cc, policy, cc, lifetime, cookies=cookies,
               vary_checked=True) is not None:
        return None
    return StoredResponse(
        url, status, _kept(response_headers, spelt, cc, label), b"", reason=reason,
        selecting=selecting(request_headers, names) if names else (), request_time=request_time,
        response_time=now, initial_age=initial_age(policy, request_time, now), lifetime=lifetime,
        flags=response_flags(cc))
