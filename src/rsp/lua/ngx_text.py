"""The text functions behind OpenResty's ngx API, in plain Python over bytes (no Lua here, no clock).

The regex dialect of ngx.re: OpenResty uses PCRE; rsp uses Python's `re` on bytes, with PCRE's spellings that
Python lacks translated (`(?<name>...)` to `(?P<name>...)`, `\\k<name>` / `\\k{name}` to `(?P=name)`) and
OpenResty's option letters mapped: i (ignore case), m (multi-line), s (dot matches newline), x (extended),
a (anchored at the start position), u and U (UTF-8: the pattern and subject are matched as text, offsets stay
byte offsets), j, o and D-less others (JIT, compile once: always true here, every pattern is cached).
What Python's re does not have (\\h, \\R, recursion, callouts, backtracking verbs) is a compile error, reported
like PCRE's: nil and a message.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterator
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache
from typing import Final
from urllib.parse import quote, unquote_to_bytes

# ngx.escape_uri escapes everything but RFC 3986 §2.3's unreserved characters (OpenResty's type 2).
_UNRESERVED: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
# Compiled patterns kept per worker: ngx.re's "o" option made the default.
REGEX_CACHE_SIZE: Final = 1024
_OPTION_FLAGS: Final = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
_IGNORED_OPTIONS: Final = frozenset("jou")  # JIT, compile once, UTF-8 on bytes: nothing to do
_NAMED_GROUP: Final = re.compile(rb"\(\?<(?=[A-Za-z_])")
_BACKREF: Final = re.compile(rb"\\k[<{]([A-Za-z_][A-Za-z0-9_]*)[>}]")


class RegexError(Exception):
    """A pattern or option that does not compile (ngx.re returns nil and this message)."""


def escape_uri(data: bytes) -> bytes:
    return quote(data, safe=b"").encode("ascii") if data else b""


# A header a handler sets can never split the head it goes into: as OpenResty does
# (ngx_http_lua_copy_escaped_header), rsp percent-escapes what a field may not hold instead of refusing it. A
# name keeps only tchar (RFC 9110 §5.6.2: no separator, space, ':' or control byte); a value keeps HTAB, SP,
# VCHAR and obs-text (§5.5: no CR, LF, NUL or other control byte).
_UNSAFE_NAME: Final = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
# (the value's bytes as one string too: rsp.lua.ngx_req checks a value with one bytes.translate, compiled,
# before calling the escape)
UNSAFE_VALUE_BYTES: Final = bytes(range(0x00, 0x09)) + bytes(range(0x0A, 0x20)) + b"\x7f"
_UNSAFE_VALUE: Final = re.compile(b"[" + re.escape(UNSAFE_VALUE_BYTES) + b"]")


def _percent(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match.group()[0]


def safe_header_name(name: bytes) -> bytes:
    """`name` with every byte a field name may not hold written %XX (the name as it is when it has none)."""
    return _UNSAFE_NAME.sub(_percent, name) if _UNSAFE_NAME.search(name) is not None else name


def safe_header_value(value: bytes) -> bytes:
    """`value` with every control byte but HTAB written %XX: a CR or LF set from Lua never starts a new field
    or ends the head (header injection, request smuggling)."""
    return _UNSAFE_VALUE.sub(_percent, value) if _UNSAFE_VALUE.search(value) is not None else value


def unescape_uri(data: bytes) -> bytes:
    """%XX decoded, `+` kept (ngx.unescape_uri decodes only percent escapes)."""
    return unquote_to_bytes(data)


def decode_args(query: bytes, max_args: int = 100) -> dict[bytes, list[bytes] | bool]:
    """ngx.decode_args: `a=1&b&a=2` -> {a: [1, 2], b: True}; `+` is a space; at most `max_args` (0: no bound)."""
    out: dict[bytes, list[bytes] | bool] = {}
    count = 0
    for part in query.split(b"&"):
        if not part:
            continue
        count += 1
        if max_args and count > max_args:
            break
        name, eq, value = part.partition(b"=")
        key = unquote_to_bytes(name.replace(b"+", b" "))
        if not key:
            continue
        if not eq:
            out.setdefault(key, True)
            continue
        decoded = unquote_to_bytes(value.replace(b"+", b" "))
        old = out.get(key)
        if isinstance(old, list):
            old.append(decoded)
        else:
            out[key] = [decoded]
    return out


def encode_args(items: list[tuple[bytes, bytes | bool | list[bytes]]]) -> bytes:
    """ngx.encode_args: value True -> bare name, False -> left out, a list -> the name repeated."""
    parts: list[bytes] = []
    for name, value in items:
        key = escape_uri(name)
        if value is True:
            parts.append(key)
        elif value is False:
            continue
        elif isinstance(value, list):
            parts.extend(key + b"=" + escape_uri(v) for v in value)
        else:
            parts.append(key + b"=" + escape_uri(value))
    return b"&".join(parts)


def encode_base64(data: bytes, no_padding: bool = False) -> bytes:
    out = base64.b64encode(data)
    return out.rstrip(b"=") if no_padding else out


def decode_base64(data: bytes) -> bytes | None:
    """None for input that is not base64 (ngx.decode_base64 returns nil)."""
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except ValueError:
        return None


def md5_hex(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).hexdigest().encode("ascii")


def md5_bin(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def sha1_bin(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


def http_time(seconds: float) -> bytes:
    """RFC 9110 §5.6.7's IMF-fixdate: `Thu, 18 Nov 2010 11:27:35 GMT`."""
    return formatdate(seconds, usegmt=True).encode("ascii")


def cookie_time(seconds: float) -> bytes:
    """The Expires format of cookies: `Thu, 18-Nov-10 11:27:35 GMT`."""
    return time.strftime("%a, %d-%b-%y %H:%M:%S GMT", time.gmtime(seconds)).encode("ascii")


def parse_http_time(text: bytes) -> int | None:
    try:
        return int(parsedate_to_datetime(text.decode("latin-1")).timestamp())
    except (TypeError, ValueError, IndexError):
        return None


def today(seconds: float) -> bytes:
    return time.strftime("%Y-%m-%d", time.localtime(seconds)).encode("ascii")


def localtime(seconds: float) -> bytes:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)).encode("ascii")


def utctime(seconds: float) -> bytes:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)).encode("ascii")


# ---- ngx.re -------------------------------------------------------------------------------------------


@lru_cache(maxsize=REGEX_CACHE_SIZE)
def compile_regex(pattern: bytes, options: bytes) -> tuple[re.Pattern[bytes], bool]:
    """The compiled pattern and whether it is anchored (option a)."""
    flags = 0
    anchored = False
    for letter in options.decode("ascii", "replace"):
        if letter in _OPTION_FLAGS:
            flags |= _OPTION_FLAGS[letter]
        elif letter == "a":
            anchored = True
        elif letter in _IGNORED_OPTIONS or letter == "U":
            continue
        else:
            raise RegexError(f"unknown flag \"{letter}\" (flags \"{options.decode('ascii', 'replace')}\")")
    translated = _BACKREF.sub(rb"(?P=\1)", _NAMED_GROUP.sub(b"(?P<", pattern))
    try:
        return re.compile(translated, flags), anchored
    except re.error as exc:
        raise RegexError(f"failed to compile regex \"{pattern.decode('utf-8', 'replace')}\": {exc}") from exc


def regex_search(subject: bytes, pattern: bytes, options: bytes, pos: int = 0) -> re.Match[bytes] | None:
    compiled, anchored = compile_regex(pattern, options)
    return compiled.match(subject, pos) if anchored else compiled.search(subject, pos)


def regex_iter(subject: bytes, pattern: bytes, options: bytes) -> Iterator[re.Match[bytes]]:
    compiled, anchored = compile_regex(pattern, options)
    if not anchored:
        yield from compiled.finditer(subject)
        return
    pos = 0
    while pos <= len(subject):
        found = compiled.match(subject, pos)
        if found is None:
            return
        yield found
        pos = found.end() + (1 if found.end() == found.start() else 0)


_TEMPLATE: Final = re.compile(rb"\$(?:(\d)|\{(\w+)\}|(\$))")


def expand_template(template: bytes, found: re.Match[bytes]) -> bytes:
    """OpenResty's replacement templates: $0..$9, ${N} or ${name}, and $$ for a dollar sign."""
    def one(ref: re.Match[bytes]) -> bytes:
        if ref.group(3):
            return b"$"
        name = ref.group(1) or ref.group(2)
        key: int | str = int(name) if name.isdigit() else name.decode("ascii")
        try:
            value = found.group(key)
        except IndexError:
            raise RegexError(f"bad template: unknown capture {name.decode('ascii', 'replace')}") from None
        return value or b""
    return _TEMPLATE.sub(one, template)


def regex_sub(subject: bytes, pattern: bytes, template: bytes, options: bytes, count: int) -> tuple[bytes, int]:
    """ngx.re.sub (count 1) and gsub (count 0: every match) with a template replacement."""
    out: list[bytes] = []
    last = 0
    n = 0
    for found in regex_iter(subject, pattern, options):
        out.append(subject[last:found.start()])
        out.append(expand_template(template, found))
        last = found.end()
        n += 1
        if count and n >= count:
            break
    out.append(subject[last:])
    return b"".join(out), n


def is_token(text: bytes) -> bool:
    """Whether `text` is an RFC 9110 §5.6.2 token (a method, §9.1, or a field name)."""
    return bool(text) and _UNSAFE_NAME.search(text) is None


def escape_query(query: bytes) -> bytes:
    """A query set by ngx.req.set_uri_args as a string: kept as given (its escapes included) but for the bytes
    RFC 3986 §3.4 does not allow there (space, CR, LF, '#', ...), written %XX so they cannot end the request
    line or start a field."""
    return quote(query, safe=b"/?:@!$&'()*+,;=-._~%").encode("ascii")


def escape_path(path: bytes) -> bytes:
    """A path set by ngx.req.set_uri, escaped for the request line: `/` and RFC 3986 §3.3's pchar kept."""
    return quote(path, safe=b"/:@!$&'()*+,;=-._~%").encode("ascii")


def quote_sql_str(data: bytes) -> bytes:
    """ngx.quote_sql_str: a MySQL string literal, quotes included."""
    table = {0: b"\\0", 8: b"\\b", 9: b"\\t", 10: b"\\n", 13: b"\\r", 26: b"\\Z", 34: b'\\"', 39: b"\\'",
             92: b"\\\\"}
    return b"'" + b"".join(table.get(c, bytes((c,))) for c in data) + b"'"
