"""HTTP-date, freshness lifetime, age and reuse (RFC 9110 §5.6.7; RFC 9111 §4.2, §4.2.4, §5.1, §5.2.1)."""

from __future__ import annotations

import calendar

from hypothesis import given
from hypothesis import strategies as st

from rsp.cache.dates import format_http_date, parse_http_date
from rsp.cache.directives import CacheControl, parse_cache_control
from rsp.cache.entry import MUST_REVALIDATE, NO_CACHE
from rsp.cache.freshness import HEURISTIC_MAX, age_value, current_age, freshness_lifetime, initial_age
from rsp.cache.reuse import FRESH, STALE_OK, VALIDATE, reuse

NOW = float(calendar.timegm((2026, 12, 6, 12, 0, 0, 0, 0, 0)))


def date(offset: float) -> bytes:
    return format_http_date(NOW + offset)


def life(headers: list[tuple[bytes, bytes]], *, status: int = 200, heuristic: bool = False) -> float:
    cc = parse_cache_control([v for k, v in headers if k == b"cache-control"])
    return freshness_lifetime(status, headers, cc, NOW, heuristic)


# ---- dates -------------------------------------------------------------------------------------------------

def test_three_date_formats_are_accepted() -> None:
    """RFC 9110 §5.6.7."""
    expected = float(calendar.timegm((1994, 11, 6, 8, 49, 37, 0, 0, 0)))
    assert parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT", NOW) == expected
    assert parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT", NOW) == expected
    assert parse_http_date(b"Sun Nov  6 08:49:37 1994", NOW) == expected


def test_two_digit_year_more_than_50_years_ahead_is_in_the_past() -> None:
    assert parse_http_date(b"Monday, 01-Jan-80 00:00:00 GMT", NOW) == calendar.timegm((1980, 1, 1, 0, 0, 0))
    assert parse_http_date(b"Tuesday, 01-Jan-30 00:00:00 GMT", NOW) == calendar.timegm((2030, 1, 1, 0, 0, 0))


def test_invalid_dates_are_none() -> None:
    for bad in (b"0", b"-1", b"", b"Sun, 32 Nov 1994 08:49:37 GMT", b"Sun, 06 Nov 1994 08:49:37 UTC",
                b"Sun, 29 Feb 2023 08:49:37 GMT", b"tomorrow"):
        assert parse_http_date(bad, NOW) is None, bad


@given(st.integers(0, 2**33))
def test_format_then_parse_is_identity(seconds: int) -> None:
    assert parse_http_date(format_http_date(seconds), NOW) == seconds


@given(st.binary(max_size=40))
def test_any_bytes_parse_or_are_none(value: bytes) -> None:
    result = parse_http_date(value, NOW)
    assert result is None or isinstance(result, float)


# ---- lifetime (§4.2.1) --------------------------------------------------------------------------------------

def test_s_maxage_before_max_age_before_expires() -> None:
    assert life([(b"cache-control", b"max-age=10, s-maxage=20"), (b"expires", date(30))]) == 20
    assert life([(b"cache-control", b"max-age=10"), (b"expires", date(30))]) == 10
    assert life([(b"date", date(0)), (b"expires", date(30))]) == 30


def test_expires_is_relative_to_date() -> None:
    assert life([(b"date", date(-100)), (b"expires", date(-40))]) == 60


def test_invalid_expires_is_already_stale() -> None:
    """§5.3: an invalid date, "0" especially, means already expired."""
    assert life([(b"expires", b"0")]) == 0
    assert life([(b"expires", b"-1"), (b"last-modified", date(-1000))], heuristic=True) == 0


def test_two_different_expires_are_stale() -> None:
    assert life([(b"expires", date(30)), (b"expires", date(60))]) == 0


def test_heuristic_only_when_configured() -> None:
    """§4.2.2: 10% of the time since Last-Modified, capped, only for heuristically cacheable statuses."""
    headers = [(b"date", date(0)), (b"last-modified", date(-1000))]
    assert life(headers) == 0
    assert life(headers, heuristic=True) == 100
    assert life(headers, heuristic=True, status=302) == 0
    assert life([(b"last-modified", date(-10**8))], heuristic=True) == HEURISTIC_MAX


# ---- age (§4.2.3, §5.1) -------------------------------------------------------------------------------------

def test_age_field_first_member_and_invalid_ignored() -> None:
    assert age_value([(b"age", b"15")]) == 15
    assert age_value([(b"age", b"15, 30")]) == 15
    assert age_value([(b"age", b"x")]) == 0
    assert age_value([]) == 0


def test_initial_age_takes_the_larger_of_apparent_and_corrected() -> None:
    # Date 50 s ago; the response took 2 s; Age: 10 says the upstream cache held it 10 s.
    assert initial_age([(b"date", date(-50)), (b"age", b"10")], NOW - 2, NOW) == 50
    assert initial_age([(b"date", date(0)), (b"age", b"10")], NOW - 2, NOW) == 12
    # A Date in the future (clock skew) does not make the age negative.
    assert initial_age([(b"date", date(100))], NOW, NOW) == 0


def test_current_age_adds_resident_time() -> None:
    assert current_age(12, NOW, NOW + 30) == 42


# ---- reuse (§4.2, §4.2.4, §5.2.1, §5.2.2) --------------------------------------------------------------------

def req(value: bytes = b"") -> CacheControl:
    return parse_cache_control([value] if value else [])


def test_fresh_when_lifetime_exceeds_age() -> None:
    assert reuse(0, 60, 59, req()) == FRESH
    assert reuse(0, 60, 60, req()) == VALIDATE


def test_no_cache_response_is_always_validated() -> None:
    assert reuse(NO_CACHE, 60, 0, req()) == VALIDATE


def test_request_no_cache_and_max_age_zero_validate() -> None:
    assert reuse(0, 60, 1, req(b"no-cache")) == VALIDATE
    assert reuse(0, 60, 1, req(b"max-age=0")) == VALIDATE
    assert reuse(0, 60, 1, req(b"max-age=5")) == FRESH


def test_min_fresh() -> None:
    assert reuse(0, 60, 50, req(b"min-fresh=5")) == FRESH
    assert reuse(0, 60, 50, req(b"min-fresh=20")) == VALIDATE


def test_max_stale_serves_stale_within_the_bound() -> None:
    assert reuse(0, 60, 70, req(b"max-stale=20")) == STALE_OK
    assert reuse(0, 60, 90, req(b"max-stale=20")) == VALIDATE
    assert reuse(0, 60, 10**6, req(b"max-stale")) == STALE_OK


def test_must_revalidate_never_serves_stale() -> None:
    """§5.2.2.2 (and proxy-revalidate, s-maxage: the filter sets the same flag)."""
    assert reuse(MUST_REVALIDATE, 60, 70, req(b"max-stale")) == VALIDATE
    assert reuse(MUST_REVALIDATE, 60, 30, req()) == FRESH


@given(st.floats(0, 1e6), st.floats(0, 1e6))
def test_without_directives_fresh_exactly_when_lifetime_exceeds_age(lifetime: float, age: float) -> None:
    assert (reuse(0, lifetime, age, req()) == FRESH) == (lifetime > age)
