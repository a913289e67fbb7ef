"""HTTP-date (RFC 9110 §5.6.7): the three formats a recipient must accept, to POSIX seconds.

    IMF-fixdate   Sun, 06 Nov 1994 08:49:37 GMT
    rfc850-date   Sunday, 06-Nov-94 08:49:37 GMT
    asctime-date  Sun Nov  6 08:49:37 1994

Anything else (including "0" or "-1" in Expires) is invalid: `parse_http_date` returns None, and the caller
decides what invalid means (for Expires: already expired, RFC 9111 §5.3).
"""

from __future__ import annotations

import calendar
import re
from email.utils import formatdate
from typing import Final

_MONTHS: Final = {m: i for i, m in enumerate(
    (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"), start=1)}
_DAY: Final = rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY: Final = rb"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MON: Final = rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME: Final = rb"(\d\d):(\d\d):(\d\d)"
IMF_FIXDATE: Final = re.compile(_DAY + rb", (\d\d) " + _MON + rb" (\d{4}) " + _TIME + rb" GMT")
RFC850_DATE: Final = re.compile(_LONG_DAY + rb", (\d\d)-" + _MON + rb"-(\d\d) " + _TIME + rb" GMT")
ASCTIME_DATE: Final = re.compile(_DAY + rb" " + _MON + rb" ( \d|\d\d) " + _TIME + rb" (\d{4})")
# RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is the most recent past such year.
TWO_DIGIT_YEAR_WINDOW: Final = 50
SECONDS_PER_YEAR: Final = 365.25 * 86400


def _epoch(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float | None:
    if year < 1 or not (1 <= day <= calendar.monthrange(year, month)[1] and hour < 24 and minute < 60 and second < 61):
        return None
    return float(calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0)))


# IMF-fixdate results, which depend on nothing but the text: a backend repeats its Last-Modified on every
# response and its Date for a second. Bounded: emptied when full.
_FIXDATES: dict[bytes, float | None] = {}
FIXDATE_MEMO_SIZE: Final = 1024


def parse_http_date(value: bytes, now: float) -> float | None:
    """Seconds since the epoch, or None when `value` is not an HTTP-date. `now` resolves rfc850's year."""
    value = value.strip(b" \t")
    if value in _FIXDATES:
        return _FIXDATES[value]
    m = IMF_FIXDATE.fullmatch(value)
    if m:
        if len(_FIXDATES) >= FIXDATE_MEMO_SIZE:
            _FIXDATES.clear()
        result = _FIXDATES[value] = _epoch(int(m[3]), _MONTHS[m[2]], int(m[1]), int(m[4]), int(m[5]), int(m[6]))
        return result
    m = ASCTIME_DATE.fullmatch(value)
    if m:
        return _epoch(int(m[6]), _MONTHS[m[1]], int(m[2]), int(m[3]), int(m[4]), int(m[5]))
    m = RFC850_DATE.fullmatch(value)
    if m:
        this_year = 1970 + int(now // SECONDS_PER_YEAR)
        year = this_year - this_year % 100 + int(m[3])
        if year > this_year + TWO_DIGIT_YEAR_WINDOW:
            year -= 100
        return _epoch(year, _MONTHS[m[2]], int(m[1]), int(m[4]), int(m[5]), int(m[6]))
    return None


def format_http_date(seconds: float) -> bytes:
    """IMF-fixdate, the form a sender generates (RFC 9110 §5.6.7)."""
    return formatdate(int(seconds), usegmt=True).encode()
