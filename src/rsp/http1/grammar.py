"""The grammar the parsers check: start lines, request targets, chunk lines, forbidden trailers (RFC 9112)."""

from __future__ import annotations

import re
from typing import Final, NoReturn

from rsp.errors import ProtocolError
from rsp.http1 import fields
from rsp.http1.fields import QUOTED_STRING, TCHAR
from rsp.http1.forward import HOP_BY_HOP
from rsp.http1.limits import MAX_CHUNK_SIZE_DIGITS

# request-line = method SP request-target SP HTTP-version (RFC 9112 §3). The target is restricted to
# visible ASCII without "#": a fragment is never sent (RFC 9112 §3.2), bytes above 0x7E are not URI
# characters (RFC 3986 §2), and HAProxy refuses both by default too. Every rule that reads a target uses these.
TARGET_CHARS: Final = rb"\x21\x22\x24-\x7e"
REQUEST_LINE_RE: Final = re.compile(rb"([%s]+) ([%s]+) HTTP/([0-9]\.[0-9])" % (TCHAR, TARGET_CHARS))
_LOOSE_VERSION_RE: Final = re.compile(rb"[^ ]+ [^ ]+ HTTP/[0-9]\.[0-9]")
# A request-target as the request-line expressions accept it.
TARGET_RE: Final = re.compile(rb"[%s]+" % TARGET_CHARS)
# status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4). A missing SP after the
# code is tolerated: the reason is optional and some servers drop the space with it.
STATUS_LINE_RE: Final = re.compile(rb"HTTP/([0-9]\.[0-9]) ([1-5][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?")
# absolute-form (RFC 9112 §3.2.2): only http and https URIs mean anything to a reverse proxy.
_ABSOLUTE_RE: Final = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?]*)([/?].*)?", re.DOTALL)
# authority-form (RFC 9112 §3.2.3): uri-host ":" port, the port is required.
AUTHORITY_RE: Final = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+):[0-9]+")
# chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1, §7.1.1). chunk-ext = *( BWS ";" BWS name
# [ BWS "=" BWS value ] ): BWS is something "a sender MUST NOT generate" and whitespace around chunk
# sizes is a known desync vector (HTTP Garden transducer bug 24), so none is accepted, as in llhttp.
CHUNK_LINE_RE: Final = re.compile(
    rb"([0-9A-Fa-f]{1,%d})(?:;[%s]+(?:=(?:[%s]+|%s))?)*" % (MAX_CHUNK_SIZE_DIGITS, TCHAR, TCHAR, QUOTED_STRING)
)

# Trailer fields that would change framing, routing or connection handling if a recipient merged them
# into the header section (RFC 9110 §6.5.1 lists framing, routing and connection-management fields among
# those that cannot be processed as trailers): refused.
FORBIDDEN_TRAILERS: Final = HOP_BY_HOP | {b"content-length", b"host"}

STATUS_CODES: Final = {b"%d" % code: code for code in range(100, 600)}
# Statuses whose response has no content whatever its fields say (RFC 9112 §6.3 rule 1).
NO_CONTENT_STATUS: Final = frozenset((*range(100, 200), 204, 304))

CONNECT: Final = b"CONNECT"
HEAD_METHOD: Final = b"HEAD"
V11: Final = b"1.1"
V10: Final = b"1.0"
CRLF: Final = b"\r\n"
END_OF_HEAD: Final = b"\r\n\r\n"  # the last line's CRLF and the empty line
CR: Final = 13
LF: Final = 10
SLASH: Final = 47  # the first byte of an origin-form target
# A field line on the fast path is `Name: value\r\n`: the bytes around its value.
NAME_SEPARATOR: Final = b": "


def bad_request_line(line: bytes) -> NoReturn:
    if b"\n" in line or b"\r" in line:
        raise ProtocolError("bare CR or LF in request line (RFC 9112 §2.2)", 400)
    if _LOOSE_VERSION_RE.fullmatch(line) is not None:
        raise ProtocolError("invalid method or request-target (RFC 9112 §3)", 400)
    raise ProtocolError("invalid request line (RFC 9112 §3)", 400)


def target_authority(method: bytes, target: bytes) -> bytes:
    """The authority a request target names (RFC 9112 §3.2): b"" for origin-form and asterisk-form."""
    if target[0] == 47:  # "/": origin-form
        if method == CONNECT:
            raise ProtocolError("CONNECT needs an authority-form target (RFC 9112 §3.2.3)", 400)
        return b""
    if method == CONNECT:
        if AUTHORITY_RE.fullmatch(target) is None:
            raise ProtocolError("invalid authority-form target (RFC 9112 §3.2.3)", 400)
        return target
    if target == b"*":
        if method != b"OPTIONS":
            raise ProtocolError("asterisk-form is only for OPTIONS (RFC 9112 §3.2.4)", 400)
        return b""
    return _absolute_authority(target)


def _absolute_authority(target: bytes) -> bytes:
    match = _ABSOLUTE_RE.fullmatch(target)
    if match is None:
        raise ProtocolError("invalid request-target (RFC 9112 §3.2)", 400)
    scheme, authority, _ = match.groups()
    if scheme.lower() not in (b"http", b"https"):
        raise ProtocolError("absolute-form target with a scheme other than http(s)", 400)
    if b"@" in authority:
        # RFC 9110 §4.2.4: userinfo in an http(s) URI is deprecated; recipients SHOULD treat it as an error.
        raise ProtocolError("userinfo in request-target (RFC 9110 §4.2.4)", 400)
    if not authority or authority[0] == 58 or not fields.valid_host(authority):
        raise ProtocolError("invalid authority in request-target (RFC 9110 §4.2.1)", 400)
    return authority
