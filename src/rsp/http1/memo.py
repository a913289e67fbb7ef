"""What the parsers' memos share: the byte comparisons, and the response near memo's learning.

Every memo is keyed on what decides a verdict and nothing less: the exact memo on the whole head (and, for
a response, the request method), the request target memo on everything but an origin-form target (which
decides nothing), and the response near memo on every byte but the values of lines whose name is not
declared (rsp.http1.head_fields: `never_volatile`). `memos=False` on a parser turns them all off
(tests/http1/test_memo_switch.py runs every scenario both ways).
"""

from __future__ import annotations

from typing import Final, final

from rsp.http1.events import ResponseHead
from rsp.http1.grammar import CRLF


def starts_with(buf: bytes, prefix: bytes, pos: int) -> bool:
    """buf.startswith(prefix, pos), for the memo check that runs on every message: compiled, a slice and
    a comparison cost less than bytes.startswith's argument parsing (and a slice of the whole of `buf`
    is `buf` itself, no copy)."""
    end = pos + len(prefix)
    return end <= len(buf) and buf[pos:end] == prefix


def kept_ranges(raw: bytes, kept: bytes) -> list[tuple[int, int]]:
    """The ranges of `raw` that, joined, give `kept`: raw with some whole field lines left out (the
    parser's `forwardable`, whose left-out lines are hop-by-hop ones, never equal to a kept line)."""
    ranges: list[tuple[int, int]] = []
    i = 0
    for line in kept.split(CRLF)[:-1]:
        size = len(line) + len(CRLF)
        while raw[i : i + size] != line + CRLF:
            i = raw.index(b"\n", i) + 1  # a left-out line
        if ranges and ranges[-1][1] == i:
            ranges[-1] = (ranges[-1][0], i + size)
        else:
            ranges.append((i, i + size))
        i += size
    return ranges


_HTAB: Final = 9
_SP: Final = 32
_DEL: Final = 127
# Each byte's class in a field value: 0 for a byte a canonical value may not hold anywhere (a control byte
# other than HTAB, or DEL; RFC 9110 §5.5 field-vchar / obs-text, with SP and HTAB inside), else 1.
_VALUE_BYTE_CLASS: Final = bytes(0 if (c < _SP and c != _HTAB) or c == _DEL else 1 for c in range(256))
_REFUSED: Final = 0


@final
class NearMemo:
    """The response near memo. Backends repeat a response head with a line or two changed: nginx's Date
    once a second, a request id or a cookie every time. The exact memo misses those, and the fast path's
    expression costs several times more than a few comparisons. The near memo learns which lines change
    between consecutive heads of the same shape ("volatile" lines: the same name, the same length, a name
    not declared by the head kind) and then checks a new head as: the bytes around the volatile values
    equal the last head's (a few memcmp), and each volatile value is a canonical value (the fast path's
    own rule). When both hold, the new head is the last one's verdict with the new `raw` and
    `forwardable`: exactly what the fast path would return, because every other byte is the one it
    validated last time and no line that decides the verdict or is refused can have changed.

    Offsets are from the head's start. `values` is empty when the memo is not armed.
    """

    __slots__ = ("chunks", "fixed", "kept", "never_volatile", "values", "volatile")

    def __init__(self, never_volatile: frozenset[bytes]) -> None:
        self.never_volatile: Final = never_volatile  # lower-case names a volatile line may never have
        self.values: list[tuple[int, int]] = []  # the value ranges that may differ from the last head
        self.fixed: list[tuple[int, int]] = []  # the ranges around them
        self.chunks: list[bytes] = []  # the bytes of the fixed ranges
        self.volatile: set[int] = set()  # indexes of the field lines that differed so far
        self.kept: list[tuple[int, int]] = []  # ranges of `raw` that make up a cut `forwardable`

    def forget(self) -> None:
        self.values = []
        self.volatile = set()

    def learn(self, previous: bytes, previous_raw: bytes, current: bytes, head: ResponseHead) -> None:
        """After a fast-path parse of `current`, which followed the head `previous` (whose event's `raw` is
        `previous_raw`, b"" from the general path): remember which value ranges may differ next time."""
        self.values = []
        self.fixed = []
        if len(previous) != len(current) or previous_raw == b"":
            return
        old_lines = previous.split(CRLF)
        new_lines = current.split(CRLF)
        if len(old_lines) != len(new_lines) or old_lines[0] != new_lines[0]:
            return
        volatile = self.volatile
        offset = len(new_lines[0]) + len(CRLF)
        values: list[tuple[int, int]] = []
        for i in range(1, len(new_lines)):
            old = old_lines[i]
            new = new_lines[i]
            colon = new.find(b":")
            if (old != new or i in volatile) and colon > 0:
                value_start = colon + len(b": ")
                if (len(old) != len(new) or old[:value_start] != new[:value_start]
                        or new[:colon].lower() in self.never_volatile):
                    self.volatile = set()
                    return
                volatile.add(i)
                values.append((offset + value_start, offset + len(new)))
            elif old != new:
                self.volatile = set()
                return
            offset += len(new) + len(CRLF)
        if not values:
            return
        fixed: list[tuple[int, int]] = []
        previous_end = 0
        for start, stop in values:
            fixed.append((previous_end, start))
            previous_end = stop
        fixed.append((previous_end, len(current)))
        self.values = values
        self.fixed = fixed
        self.chunks = [current[start:stop] for start, stop in fixed]
        raw = head.raw
        forwardable = head.forwardable
        if forwardable is not None and forwardable is not raw:
            # `forwardable` is `raw` without its hop-by-hop lines; they are fixed, so the cut is the same
            # one next time: remember the kept ranges of raw.
            try:
                self.kept = kept_ranges(raw, forwardable)
            except ValueError:  # cannot happen for a forwardable the fast path built; never guess
                self.values = []

    def matches(self, buf: bytes, pos: int) -> bool:
        """Whether the head of the learned size at `pos` is the learned one but for canonical values in
        its volatile ranges (the caller checked that the head's bytes have arrived)."""
        chunks = self.chunks
        for i, (start, stop) in enumerate(self.fixed):
            if buf[pos + start : pos + stop] != chunks[i]:
                return False
        for start, stop in self.values:
            # The fast path's rule for a value (fast_path.CANONICAL_VALUE): not empty, no control byte but
            # HTAB, and no SP or HTAB at either end. The bytes go through the byte-class table in one
            # translate (a mypyc primitive) and a memchr for class 0 (`in` with an int; with a bytes needle
            # CPython first tries the int and raises, ~2,000 instructions). Compiled, a loop over the
            # bytes cost ~50 instructions per byte.
            value = buf[pos + start : pos + stop]
            if not value or value[0] in (_HTAB, _SP) or value[-1] in (_HTAB, _SP):
                return False
            if _REFUSED in value.translate(_VALUE_BYTE_CLASS):
                return False
        return True

    def forwardable(self, previous: ResponseHead, raw: bytes) -> bytes | None:
        """The `forwardable` of a head matched against the learned one (`previous`), whose `raw` is this."""
        if previous.forwardable is None:
            return None
        if previous.forwardable is previous.raw:
            return raw
        return b"".join([raw[a:b] for a, b in self.kept])
