"""Field-line grammar and the rules for the fields that decide framing and routing.

The field section is split and validated with one compiled regular expression (RFC 9112 §5,
RFC 9110 §5.5): every line is either a valid `field-name ":" OWS field-value OWS CRLF` or it is
reported as bad, so nothing between two CRLFs can slip through unvalidated. Field values may hold HTAB,
SP, VCHAR and obs-text (0x80-0xFF); every other control byte, NUL, a lone CR or LF, and DEL are refused.
"""

from __future__ import annotations

import re
from typing import Final, NoReturn

from rsp.errors import ProtocolError

# token = 1*tchar (RFC 9110 §5.6.2)
TCHAR: Final = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN_RE: Final = re.compile(rb"[%s]+" % TCHAR)

# field-line = field-name ":" OWS field-value OWS; field-value = *field-content; field-content starts and
# ends with field-vchar (VCHAR / obs-text) and may hold SP / HTAB inside (RFC 9110 §5.5).
# The value group is greedy over HTAB / SP / VCHAR / obs-text, so it may end with OWS: parse_fields() strips
# it, after a single search of the section for " \r\n" / "\t\r\n" (cheaper than a regex that excludes
# trailing OWS itself, see docs/performance.md). A line is either valid (both groups filled) or matched by the
# catch-all `[^\n]*\n`, in which case both groups are empty: `name == b""` marks a bad line. The catch-all
# makes matches contiguous, so every byte of the section belongs to exactly one reported line.
FIELD_LINE_RE: Final = re.compile(rb"([%s]+):[ \t]*([\t\x20-\x7e\x80-\xff]*)\r\n|[^\n]*\n" % TCHAR)
_VALUE_BYTES_RE: Final = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")

# Content-Length = 1*DIGIT (RFC 9110 §8.6); the digit bound is limits.MAX_CONTENT_LENGTH_DIGITS.
_DIGITS_RE: Final = re.compile(rb"[0-9]+")

# transfer-coding = token *( OWS ";" OWS transfer-parameter ) (RFC 9110 §10.1.4)
# quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4)
QUOTED_STRING: Final = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_TRANSFER_CODING_RE: Final = re.compile(
    rb"[%s]+(?:[ \t]*;[ \t]*[%s]+[ \t]*=[ \t]*(?:[%s]+|%s))*" % (TCHAR, TCHAR, TCHAR, QUOTED_STRING)
)

# Host = uri-host [ ":" port ] (RFC 9110 §7.2); uri-host = IP-literal / IPv4address / reg-name (RFC 3986).
# reg-name = *( unreserved / pct-encoded / sub-delims ); an empty Host is valid when the target URI has no
# authority (RFC 9112 §3.2).
# One character class repeated (fast in `re`); percent-encodings are checked apart, only when "%" occurs.
HOST_RE: Final = re.compile(
    rb"(?:\[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]"
    rb"|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?"
)
_BAD_PERCENT_RE: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def is_token(value: bytes) -> bool:
    return _TOKEN_RE.fullmatch(value) is not None


def bad_line_reason(line: bytes) -> str:
    """Explain why a field line did not match the grammar (slow path, for the error message)."""
    body = line[:-2] if line.endswith(b"\r\n") else line
    if not line.endswith(b"\r\n") or b"\n" in body:
        return "bare LF in field section (RFC 9112 §2.2)"
    if body[:1] in (b" ", b"\t"):
        return "obs-fold (line folding) is not accepted (RFC 9112 §5.2)"
    if b"\r" in body:
        return "bare CR in field line (RFC 9112 §2.2)"
    colon = body.find(b":")
    if colon < 0:
        return "field line without colon (RFC 9112 §5)"
    name = body[:colon]
    if not name:
        return "empty field name (RFC 9110 §5.1)"
    if name[-1:] in (b" ", b"\t"):
        return "whitespace between field name and colon (RFC 9112 §5.1)"
    if not is_token(name):
        return "invalid field name (RFC 9110 §5.1)"
    return "invalid byte in field value (RFC 9110 §5.5)"


def parse_fields(buf: bytes, start: int, end: int, max_count: int, status: int) -> list[tuple[bytes, bytes]]:
    """Split and validate the field lines in buf[start:end] (each ends with CRLF; the empty line excluded).

    Used for trailer sections; the head parsers inline the same steps.
    """
    pairs: list[tuple[bytes, bytes]] = FIELD_LINE_RE.findall(buf, start, end)
    if len(pairs) > max_count:
        raise ProtocolError(f"more than {max_count} field lines", 431 if status == 400 else status)
    for name, _ in pairs:
        if not name:
            raise_bad_line(buf, start, end, status)
    if has_trailing_ows(buf, start, end):
        pairs = strip_values(pairs)
    return pairs


def has_trailing_ows(buf: bytes, start: int, end: int) -> bool:
    return buf.find(b" \r\n", start, end) >= 0 or buf.find(b"\t\r\n", start, end) >= 0


def strip_values(pairs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Remove the OWS that FIELD_LINE_RE leaves at the end of values (RFC 9112 §5.1)."""
    return [(name, value.rstrip(b" \t")) for name, value in pairs]


def raise_bad_line(buf: bytes, start: int, end: int, status: int) -> NoReturn:
    for m in FIELD_LINE_RE.finditer(buf, start, end):
        if not m.group(1):
            raise ProtocolError(bad_line_reason(m.group(0)), status)
    raise ProtocolError("malformed field section", status)  # pragma: no cover - unreachable


# Fields a backend could confuse with a look-alike name (see head_fields.fields_table): framing fields and the
# forwarding fields rsp writes itself.
LOOKALIKE_TARGETS: Final = (
    b"content-length",
    b"transfer-encoding",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
)


def separator_variants(name: bytes) -> list[bytes]:
    """Every spelling of `name` with some of its "-" written as "_" (the name itself excluded)."""
    parts = name.split(b"-")
    variants = [parts[0]]
    for part in parts[1:]:
        variants = [v + sep + part for v in variants for sep in (b"-", b"_")]
    return [v for v in variants if v != name]


def raise_lookalike(name: bytes, status: int) -> NoReturn:
    canonical = name.lower().replace(b"_", b"-").decode()
    raise ProtocolError(f"field name {name.decode()!r} imitates {canonical}", status)


def split_list(value: bytes) -> list[bytes]:
    """Split a comma-separated field value into stripped elements (RFC 9110 §5.6.1), empties kept."""
    return [element.strip(b" \t") for element in value.split(b",")]


def connection_options(value: bytes, status: int) -> tuple[bytes, ...]:
    """The Connection options, lower-cased (RFC 9110 §7.6.1: Connection = #connection-option; token).

    `value` is every Connection field line joined with ", ". Empty list elements are ignored as
    RFC 9110 §5.6.1 requires. A Connection field naming a field that decides framing or routing is
    refused: dropping it while forwarding (as §7.6.1 requires) would make the next hop frame or route
    the message differently from us.
    """
    common = COMMON_CONNECTION.get(value)
    if common is not None:
        return common
    options: list[bytes] = []
    for element in split_list(value):
        if not element:
            continue
        if not is_token(element):
            raise ProtocolError("invalid Connection option (RFC 9110 §7.6.1)", status)
        lowered = element.lower()
        if lowered in _CONNECTION_FORBIDDEN:
            raise ProtocolError(f"Connection names {lowered.decode()}, which decides framing or routing", status)
        options.append(lowered)
    return tuple(options)


_CONNECTION_FORBIDDEN: Final = frozenset((b"content-length", b"transfer-encoding", b"host"))
# The values browsers and load generators send, parsed once: a dictionary hit instead of a split. Only
# values naming hop-by-hop fields or "close": the parsers' fast path relies on it (HeadFields.vetted).
COMMON_CONNECTION: Final[dict[bytes, tuple[bytes, ...]]] = {}
COMMON_CONNECTION.update(
    (value, connection_options(value, 400))
    for value in (
        b"keep-alive",
        b"Keep-Alive",
        b"close",
        b"Close",
        b"upgrade",
        b"Upgrade",
        b"keep-alive, Upgrade",
        b"keep-alive, upgrade",
        b"Keep-Alive, Upgrade",
    )
)


def content_length(value: bytes, max_digits: int, status: int) -> int:
    """The Content-Length value (RFC 9112 §6.3 rule 5; RFC 9110 §8.6).

    The caller refuses a second Content-Length field line, even with an equal value, and this refuses
    a list ("42, 42"): RFC 9110 §8.6 lets a recipient either reject or collapse them, and collapsing is
    what split implementations on the HTTP Garden list.
    """
    if _DIGITS_RE.fullmatch(value) is None:
        raise ProtocolError("invalid Content-Length value (RFC 9110 §8.6)", status)
    if len(value) > max_digits:
        raise ProtocolError("Content-Length too large", status)
    return int(value)


def check_transfer_encoding(value: bytes, status: int, unknown_status: int) -> None:
    """Validate the Transfer-Encoding value (all field lines joined with ", "): only one final `chunked`.

    Only `chunked`, exactly once and last, is accepted (RFC 9112 §6.1, §7). Other codings are valid
    HTTP that rsp does not implement: `unknown_status` (501 for requests, RFC 9112 §6.1). A malformed
    list, an empty element (`,chunked`), a repeated or non-final `chunked` is `status` (400): these are
    the shapes that split implementations in the HTTP Garden and desync-guardian corpora.
    """
    if value == b"chunked":
        return
    elements = split_list(value)
    unknown = False
    chunked_at = -1
    for index, element in enumerate(elements):
        if not element:
            raise ProtocolError("empty Transfer-Encoding element", status)
        lowered = element.lower()
        if lowered == b"chunked":
            if chunked_at >= 0:
                raise ProtocolError("chunked applied more than once (RFC 9112 §6.1)", status)
            chunked_at = index
        elif _TRANSFER_CODING_RE.fullmatch(element) is None:
            raise ProtocolError("malformed Transfer-Encoding (RFC 9110 §10.1.4)", status)
        else:
            unknown = True
    if chunked_at >= 0 and chunked_at != len(elements) - 1:
        raise ProtocolError("chunked is not the final transfer coding (RFC 9112 §6.1)", status)
    if unknown:
        raise ProtocolError("unsupported transfer coding (RFC 9112 §6.1)", unknown_status)


# Host values found valid, shared by every connection of the process: a new connection's first request has
# no per-connection memo (the parser's `_valid_host`), and the expression costs ~4,800 instructions for
# `127.0.0.1:8080` (callgrind, docs/performance.md "New connections"), a dict lookup ~100. Bounded: emptied
# when full, so a client sending ever new names costs one expression per name, as without it.
MAX_VALID_HOSTS: Final = 1024
_VALID_HOSTS: Final[dict[bytes, None]] = {}


def valid_host(value: bytes) -> bool:
    """Host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2); empty is valid (RFC 9112 §3.2)."""
    if value in _VALID_HOSTS:
        return True
    if HOST_RE.fullmatch(value) is None:
        return False
    if b"%" in value and _BAD_PERCENT_RE.search(value) is not None:
        return False
    if len(_VALID_HOSTS) >= MAX_VALID_HOSTS:
        _VALID_HOSTS.clear()
    _VALID_HOSTS[value] = None
    return True


def field_value_ok(value: bytes) -> bool:
    """True when `value` may be sent as a field value (used by code that builds heads)."""
    return _VALUE_BYTES_RE.fullmatch(value) is not None and value == value.strip(b" \t")
