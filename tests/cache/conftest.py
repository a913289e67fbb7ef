"""The fixtures every cache filter test uses: a clock the test moves, and a real LMDB store on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsp.cache.store import CacheStore
from support.cache_exchange import Clock

STORE_BYTES = 8 * 1024 * 1024


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> CacheStore:
    s = CacheStore(str(tmp_path / "c.lmdb"), STORE_BYTES, clock=clock)
    yield s  # type: ignore[misc]
    s.close()
