"""Cache-Control (RFC 9111 §5.2) and Pragma (§5.4) parsing.

    Cache-Control   = #cache-directive
    cache-directive = token [ "=" ( token / quoted-string ) ]

Directive names compare case-insensitively; both argument forms are accepted for every directive (§5.2:
"recipients ought to accept both forms"). Unknown directives are ignored (§5.2.3). A directive given twice
with different arguments, or with an argument that is not valid for it, makes the freshness information
invalid, and §4.2.1 encourages treating such a response as stale: `max_age` / `s_maxage` then read 0.
"""

from __future__ import annotations

from typing import Final

# RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as 2^31.
DELTA_MAX: Final = 2147483648
# `max-stale` without an argument: any staleness is acceptable (§5.2.1.2).
ANY_STALE: Final = DELTA_MAX

_TCHAR: Final = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OWS: Final = b" \t"


def delta_seconds(text: bytes) -> int | None:
    """RFC 9111 §1.2.2 delta-seconds (1*DIGIT), capped at 2^31; None when malformed."""
    if not text or not text.isdigit() or not text.isascii():
        return None
    value = int(text)
    return DELTA_MAX if value > DELTA_MAX else value


def split_directives(values: list[bytes]) -> list[tuple[bytes, bytes | None]] | None:
    """The (lower-case name, argument) pairs of every field line, in order; a quoted-string argument comes back
    unquoted. Empty list elements are skipped (RFC 9110 §5.6.1). None when the syntax is broken (a name that
    is not a token, an unterminated quoted string): the caller treats that as "no usable directives"."""
    out: list[tuple[bytes, bytes | None]] = []
    for value in values:
        i, n = 0, len(value)
        while i < n:
            while i < n and value[i] in b" \t,":
                i += 1
            if i >= n:
                break
            start = i
            while i < n and value[i] in _TCHAR:
                i += 1
            name = value[start:i].lower()
            if not name:
                return None
            while i < n and value[i] in _OWS:
                i += 1
            arg: bytes | None = None
            if i < n and value[i] == 0x3D:  # "="
                i += 1
                while i < n and value[i] in _OWS:
                    i += 1
                if i < n and value[i] == 0x22:  # quoted-string, RFC 9110 §5.6.4
                    i += 1
                    buf = bytearray()
                    while True:
                        if i >= n:
                            return None
                        c = value[i]
                        if c == 0x22:
                            i += 1
                            break
                        if c == 0x5C:  # quoted-pair
                            if i + 1 >= n:
                                return None
                            buf.append(value[i + 1])
                            i += 2
                            continue
                        buf.append(c)
                        i += 1
                    arg = bytes(buf)
                else:
                    start = i
                    while i < n and value[i] in _TCHAR:
                        i += 1
                    arg = value[start:i]
                while i < n and value[i] in _OWS:
                    i += 1
            if i < n and value[i] != 0x2C:  # anything but a comma after a directive is broken syntax
                return None
            out.append((name, arg))
    return out


def field_names(arg: bytes) -> frozenset[bytes] | None:
    """The field-name list of a qualified no-cache / private (§5.2.2.4, §5.2.2.7); None when malformed."""
    names = [part.strip(b" \t").lower() for part in arg.split(b",")]
    names = [name for name in names if name]
    if not names or any(not all(c in _TCHAR for c in name) for name in names):
        return None
    return frozenset(names)


class CacheControl:
    """The directives of one message that rsp acts on. A response's and a request's use the same class; each
    side reads only its own directives (§5.2.1 request, §5.2.2 response).

    no_cache / private: the unqualified forms. no_cache_fields / private_fields: the qualified forms' field
    names (a malformed list counts as the unqualified form, the more restrictive reading, §4.2.1).
    max_age, s_maxage, min_fresh, stale_*: seconds, None when absent, 0 when duplicated with different
    values or malformed (max-age / s-maxage: stale, §4.2.1). max_stale: ANY_STALE when given without argument.
    """

    __slots__ = ("immutable", "max_age", "max_stale", "min_fresh", "must_revalidate", "no_cache",
                 "no_cache_fields", "no_store", "no_transform", "only_if_cached", "private", "private_fields",
                 "proxy_revalidate", "public", "s_maxage", "stale_if_error", "stale_while_revalidate")

    def __init__(self) -> None:
        self.max_age: int | None = None
        self.s_maxage: int | None = None
        self.max_stale: int | None = None
        self.min_fresh: int | None = None
        self.stale_while_revalidate: int | None = None
        self.stale_if_error: int | None = None
        self.no_cache = False
        self.no_cache_fields: frozenset[bytes] = frozenset()
        self.private = False
        self.private_fields: frozenset[bytes] = frozenset()
        self.no_store = False
        self.no_transform = False
        self.must_revalidate = False
        self.proxy_revalidate = False
        self.public = False
        self.immutable = False
        self.only_if_cached = False

    def __repr__(self) -> str:
        set_ = {name: getattr(self, name) for name in self.__slots__ if getattr(self, name) not in (None, False,
                                                                                                    frozenset())}
        return f"CacheControl({set_})"


_SECONDS: Final = {b"max-age": "max_age", b"s-maxage": "s_maxage", b"min-fresh": "min_fresh",
                   b"stale-while-revalidate": "stale_while_revalidate", b"stale-if-error": "stale_if_error"}
_FLAGS: Final = {b"no-store": "no_store", b"no-transform": "no_transform", b"must-revalidate": "must_revalidate",
                 b"proxy-revalidate": "proxy_revalidate", b"public": "public", b"immutable": "immutable",
                 b"only-if-cached": "only_if_cached"}


def parse_cache_control(values: list[bytes]) -> CacheControl:
    """Every Cache-Control field line of a message (combined as one list, RFC 9110 §5.3)."""
    cc = CacheControl()
    pairs = split_directives(values)
    if pairs is None:
        # Unparseable: nothing can be trusted, so take the restrictive reading (§4.2.1) without inventing
        # no-store: the response may be stored but is stale at once and revalidated.
        cc.max_age = 0
        cc.no_cache = True
        return cc
    seen: dict[bytes, bytes | None] = {}
    for name, arg in pairs:
        duplicate = name in seen and seen[name] != arg
        seen.setdefault(name, arg)
        if name in _SECONDS:
            attr = _SECONDS[name]
            seconds = delta_seconds(arg) if arg is not None else None
            if seconds is None or duplicate:
                seconds = 0  # malformed or conflicting duplicates: stale (§4.2.1)
            if getattr(cc, attr) is None or duplicate:
                setattr(cc, attr, seconds)
        elif name in _FLAGS:
            setattr(cc, _FLAGS[name], True)
        elif name == b"max-stale":
            if arg is None:
                cc.max_stale = ANY_STALE
            else:
                stale = delta_seconds(arg)
                # A malformed or conflicting max-stale allows no staleness: the stricter reading.
                cc.max_stale = 0 if stale is None or duplicate else (stale if cc.max_stale is None
                                                                      else cc.max_stale)
        elif name in (b"no-cache", b"private"):
            names = field_names(arg) if arg is not None else None
            if names is None:
                setattr(cc, name.decode().replace("-", "_"), True)
            elif name == b"no-cache":
                cc.no_cache_fields |= names
            else:
                cc.private_fields |= names
        # anything else: an extension rsp does not know, ignored (§5.2.3)
    return cc


def request_cache_control(cache_control: list[bytes], pragma: list[bytes]) -> CacheControl:
    """A request's directives: Cache-Control, or `Pragma: no-cache` when there is no Cache-Control (§5.4)."""
    if cache_control:
        return parse_cache_control(cache_control)
    cc = CacheControl()
    pairs = split_directives(pragma) or []
    if any(name == b"no-cache" for name, _ in pairs):
        cc.no_cache = True
    return cc
