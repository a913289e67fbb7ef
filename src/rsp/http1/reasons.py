"""Reason phrases (RFC 9110 §15), in one place: the error pages, the serialiser and the stats endpoint read them
here. A client ignores the phrase (RFC 9112 §4), but people read it.

They are http.HTTPStatus's, except the two RFC 9110 renamed (§15.5.14, §15.5.15), which Python spells the old
way before 3.13 ("Request Entity Too Large", "Request-URI Too Long").
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

RFC9110_RENAMED: Final = {413: "Content Too Large", 414: "URI Too Long"}
UNKNOWN_REASON: Final = "Error"
PHRASES: Final[dict[int, str]] = {int(s): RFC9110_RENAMED.get(int(s), s.phrase) for s in HTTPStatus}


def reason(status: int) -> str:
    """The reason phrase of `status`, or "Error" for a code with none registered."""
    return PHRASES.get(status, UNKNOWN_REASON)
