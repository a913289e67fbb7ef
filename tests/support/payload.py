"""Deterministic, non-repeating test content.

SHAKE-256 is an extendable-output function: `payload(n)` is always a prefix of `payload(m)` for n < m, the
bytes never repeat with a short period (so a relay that duplicates or drops a block cannot produce the same
hash by accident), and 20 MiB takes well under 0.1 s to make.
"""

from __future__ import annotations

import functools
import hashlib

PAYLOAD_SEED = b"rsp integration payload v1"


@functools.lru_cache(maxsize=8)
def payload(size: int) -> bytes:
    return hashlib.shake_256(PAYLOAD_SEED).digest(size)


def digest(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()
