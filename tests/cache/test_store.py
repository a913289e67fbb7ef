"""The LMDB store: round trip, variants, delete, LRU eviction under the size bound, and two real processes
sharing one store (a fork opens its own environment)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rsp.cache.entry import (
    BODY_MEMO_BYTES,
    BODY_MEMO_LARGEST,
    WHOLE_COPY,
    CorruptEntry,
    StoredResponse,
    decode,
    encode,
    forget_bodies,
    primary_key,
    remembered_body_bytes,
)
from rsp.cache.store import LRU_INTERVAL, CacheStore
from support.forked import run_forked

MIB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def entry(url: bytes, body: bytes = b"hello", selecting: tuple[tuple[bytes, bytes | None], ...] = ()
          ) -> StoredResponse:
    return StoredResponse(url, 200, [(b"content-type", b"text/plain"), (b"etag", b'"1"')], body,
                          selecting=selecting, request_time=1.0, response_time=2.0, initial_age=3.0,
                          lifetime=60.0, flags=1)


@pytest.fixture
def store(tmp_path: Path) -> CacheStore:
    s = CacheStore(str(tmp_path / "c.lmdb"), 4 * MIB, clock=Clock())
    yield s  # type: ignore[misc]
    s.close()


def test_entry_bytes_round_trip() -> None:
    e = entry(b"http://a/x", b"\x00body", ((b"accept", None), (b"accept-encoding", b"gzip")))
    back = decode(encode(e))
    assert (back.url, back.status, back.headers, back.body, back.selecting, back.lifetime, back.flags,
            back.initial_age) == (e.url, 200, e.headers, b"\x00body", e.selecting, 60.0, 1, 3.0)
    with pytest.raises(CorruptEntry):
        decode(encode(e)[:-1])
    with pytest.raises(CorruptEntry):
        decode(b"XXXX" + encode(e)[4:])


@pytest.mark.parametrize("size", [100, WHOLE_COPY + 1])
def test_an_entry_decodes_alike_from_bytes_and_from_a_buffer(size: int) -> None:
    """A buffer (LMDB's view of the map) is copied whole when small, as head and body apart when large."""
    e = entry(b"http://a/x", b"b" * size, ((b"accept", b"text/html"),))
    data = encode(e)
    for given in (data, memoryview(data)):
        back = decode(given)
        assert (back.url, back.headers, back.body, back.selecting, back.stamp) == (
            e.url, e.headers, e.body, e.selecting, e.stamp)
    with pytest.raises(CorruptEntry):
        decode(memoryview(data[:-1]))  # the body one byte short
    with pytest.raises(CorruptEntry):
        decode(memoryview(data + b"x"))  # one byte too many


def test_a_large_body_is_copied_out_of_the_map_once_per_stored_response(store: CacheStore) -> None:
    """Hits on a large entry share one copy of its body; a replaced entry (a later put) is read anew."""
    forget_bodies()
    clock = store.clock
    assert isinstance(clock, Clock)
    first_body = b"1" * (WHOLE_COPY * 4)
    assert store.put(entry(b"http://a/big", first_body))
    one, two = store.lookup(b"http://a/big")[0], store.lookup(b"http://a/big")[0]
    assert one.body == first_body and two.body is one.body
    assert remembered_body_bytes() == len(first_body)
    clock.t += 1  # a later fetch of the same URL, same fields, same length, other bytes
    second_body = b"2" * len(first_body)
    assert store.put(entry(b"http://a/big", second_body))
    assert store.lookup(b"http://a/big")[0].body == second_body
    assert store.delete(b"http://a/big") == 1
    assert store.lookup(b"http://a/big") == []  # the memo never answers for what the store does not hold


def test_the_body_memo_is_bounded_in_bytes() -> None:
    forget_bodies()
    size = BODY_MEMO_BYTES // 10
    last = b""
    for i in range(25):
        last = bytes([i]) * size
        decoded = decode(memoryview(encode(entry(b"http://a/%d" % i, last))))
        assert decoded.body == last
        assert remembered_body_bytes() <= BODY_MEMO_BYTES
    assert remembered_body_bytes() >= BODY_MEMO_BYTES - size  # full, less than one body of room
    again = decode(memoryview(encode(entry(b"http://a/24", last))))
    assert again.body == last  # the newest is still remembered (and equal)
    held = remembered_body_bytes()
    huge = b"h" * (BODY_MEMO_LARGEST + 1)
    assert decode(memoryview(encode(entry(b"http://a/huge", huge)))).body == huge
    assert remembered_body_bytes() == held  # a body over a quarter of the memo is not kept
    forget_bodies()


def test_the_primary_key_lower_cases_scheme_and_host_only() -> None:
    """RFC 9110 §4.2.3: the same key however the scheme and host are spelt, the target as given; twice, since
    the second lookup of an origin comes from the memo."""
    for _ in range(2):
        assert primary_key(b"HTTP", b"Example.COM:8080", b"/A?b=C") == b"http://example.com:8080/A?b=C"
        assert primary_key(b"http", b"example.com:8080", b"/A?b=C") == b"http://example.com:8080/A?b=C"


def test_put_lookup_replace_delete(store: CacheStore) -> None:
    assert store.lookup(b"http://a/x") == []
    assert store.put(entry(b"http://a/x", b"one"))
    assert store.put(entry(b"http://a/y", b"other"))
    assert [e.body for e in store.lookup(b"http://a/x")] == [b"one"]
    assert store.put(entry(b"http://a/x", b"two"))  # same variant: replaced
    assert [e.body for e in store.lookup(b"http://a/x")] == [b"two"]
    assert store.count() == 2
    assert store.delete(b"http://a/x") == 1
    assert store.lookup(b"http://a/x") == [] and store.count() == 1


def test_variants_share_a_uri(store: CacheStore) -> None:
    store.put(entry(b"http://a/v", b"gz", ((b"accept-encoding", b"gzip"),)))
    store.put(entry(b"http://a/v", b"br", ((b"accept-encoding", b"br"),)))
    assert sorted(e.body for e in store.lookup(b"http://a/v")) == [b"br", b"gz"]
    assert store.delete(b"http://a/v") == 2


def test_eviction_keeps_the_budget_and_drops_least_recently_used(tmp_path: Path) -> None:
    clock = Clock()
    store = CacheStore(str(tmp_path / "small.lmdb"), 1 * MIB, clock=clock)
    body = b"x" * 100_000
    capacity = store.budget // len(body)  # about 6 entries of 100 kB in 60% of 1 MiB
    for i in range(capacity + 3):
        clock.t += 1
        assert store.put(entry(f"http://a/{i}".encode(), body))
        if i == capacity - 2:
            # a hit on entry 0 long enough after it was stored moves it to the young end
            clock.t += LRU_INTERVAL
            store.touch(store.lookup(b"http://a/0")[0])
        assert store.used() <= store.budget
    assert store.lookup(b"http://a/0"), "the touched entry survived"
    assert not store.lookup(b"http://a/1"), "the oldest untouched entry was evicted"
    assert store.lookup(f"http://a/{capacity + 2}".encode())
    assert store.evicted > 0
    assert os.path.getsize(tmp_path / "small.lmdb") <= 1 * MIB
    store.close()


def test_object_bigger_than_the_budget_is_refused(tmp_path: Path) -> None:
    store = CacheStore(str(tmp_path / "tiny.lmdb"), 1 * MIB)
    assert not store.put(entry(b"http://a/big", b"x" * MIB))
    assert store.lookup(b"http://a/big") == []
    store.close()


def test_a_forked_process_reads_and_writes_the_same_store(store: CacheStore) -> None:
    store.put(entry(b"http://a/parent", b"from parent"))
    held = store._env().begin()  # a read transaction the parent holds across the child's reopen

    def child(fd: int) -> int:
        # The child opens its own environment (the pid changed); it sees the parent's entry and adds one.
        found = store.lookup(b"http://a/parent")
        os.write(fd, found[0].body if found else b"missing")
        store.put(entry(b"http://a/child", b"from child"))
        return 0

    code, out = run_forked(child)
    assert (code, out) == (0, b"from parent")
    assert [e.body for e in store.lookup(b"http://a/child")] == [b"from child"]
    assert held.stat(store._objects)["entries"] == 1  # the parent's snapshot still reads
    held.abort()


def test_two_processes_writing_concurrently_keep_the_bound(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.lmdb")
    store = CacheStore(path, 2 * MIB)

    def writer(tag: str):  # type: ignore[no-untyped-def]
        def body(fd: int) -> int:
            for i in range(200):
                store.put(entry(f"http://a/{tag}{i}".encode(), b"y" * 20_000))
            return 0
        return body

    pid_out = [run_forked(writer(t)) for t in ("a",)]  # one at a time from the test, one alongside below
    second = subprocess.Popen([sys.executable, "-c", (
        "import sys; from rsp.cache.store import CacheStore; from rsp.cache.entry import StoredResponse\n"
        f"s = CacheStore({path!r}, {2 * MIB})\n"
        "for i in range(200):\n"
        "    s.put(StoredResponse(b'http://a/b%d' % i, 200, [], b'z' * 20000, lifetime=60.0))\n"
        "print(len(s.lookup(b'http://a/b199')))\n")], stdout=subprocess.PIPE, env={**os.environ})
    code, _ = run_forked(writer("c"))
    out, _ = second.communicate(timeout=60)
    assert pid_out[0][0] == 0 and code == 0 and second.returncode == 0 and out.strip() == b"1"
    assert store.used() <= store.budget
    assert os.path.getsize(path) <= 2 * MIB
    assert store.lookup(b"http://a/b199") or store.lookup(b"http://a/c199")
    store.close()


def test_entries_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "keep.lmdb")
    first = CacheStore(path, 4 * MIB)
    first.put(entry(b"http://a/kept", b"still here"))
    first.close()
    again = CacheStore(path, 4 * MIB)
    assert [e.body for e in again.lookup(b"http://a/kept")] == [b"still here"]
    again.close()


def test_a_damaged_file_is_replaced_by_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "damaged.lmdb"
    path.write_bytes(b"not an lmdb file " * 1000)
    store = CacheStore(str(path), 4 * MIB)
    store.open()
    assert store.lookup(b"http://a/x") == []
    assert store.put(entry(b"http://a/x"))
    store.close()


def test_an_unusable_path_stops_the_start(tmp_path: Path) -> None:
    from rsp.errors import StartupError

    store = CacheStore(str(tmp_path / "missing-dir" / "c.lmdb"), 4 * MIB)
    with pytest.raises(StartupError, match="missing-dir"):
        store.open()


def test_a_field_with_lf_or_nul_is_not_stored(store: CacheStore) -> None:
    bad = entry(b"http://a/bad")
    bad.headers.append((b"x-bad", b"a\nb"))
    assert not store.put(bad)
    assert store.lookup(b"http://a/bad") == []


def test_variants_of_one_uri_are_bounded_oldest_first(tmp_path: Path) -> None:
    from rsp.cache.store import MAX_VARIANTS

    clock = Clock()
    store = CacheStore(str(tmp_path / "v.lmdb"), 8 * MIB, clock=clock)
    for i in range(MAX_VARIANTS + 3):
        clock.t += 1
        assert store.put(entry(b"http://a/ua", f"agent {i}".encode(), ((b"user-agent", f"ua{i}".encode()),)))
    bodies = {e.body for e in store.lookup(b"http://a/ua")}
    assert len(bodies) == MAX_VARIANTS
    assert b"agent 0" not in bodies and f"agent {MAX_VARIANTS + 2}".encode() in bodies
    store.put(entry(b"http://a/other"))
    assert store.lookup(b"http://a/other")  # other URIs are not touched
    store.close()


def test_coalescing_marks(store: CacheStore) -> None:
    from rsp.cache.store import BUSY, CLAIMED, NO_MARK, PASS

    url = b"http://a/m"
    assert store.mark(url, 100.0) == NO_MARK
    assert store.claim(url, 100.0, 5.0) == CLAIMED
    assert store.claim(url, 101.0, 5.0) == BUSY and store.mark(url, 101.0) == BUSY
    assert store.claim(url, 106.0, 5.0) == CLAIMED  # the first holder's time ran out
    assert store.put(entry(url), unmark=True)
    assert store.mark(url, 106.0) == NO_MARK  # removed with the put, in its transaction
    store.claim(url, 110.0, 5.0)
    store.release(url, 110.0, pass_for=10.0)
    assert store.mark(url, 115.0) == PASS and store.claim(url, 115.0, 5.0) == PASS
    assert store.mark(url, 121.0) == NO_MARK


def test_a_touch_rewrites_the_stamp_in_the_entry_and_a_stale_handle_does_nothing(store: CacheStore) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    assert store.put(entry(b"http://a/t"))
    first = store.lookup(b"http://a/t")[0]
    clock.t += LRU_INTERVAL + 1
    store.touch(first)
    again = store.lookup(b"http://a/t")[0]
    assert again.stamp == first.stamp == int(clock.t * 1_000_000)  # the stored entry carries its new stamp
    assert (again.body, again.headers) == (b"hello", entry(b"x").headers)
    stale = decode(encode(again))
    stale.stamp -= 1  # a handle read before another worker touched or replaced the entry
    clock.t += LRU_INTERVAL + 1
    store.touch(stale)
    assert store.lookup(b"http://a/t")[0].stamp == again.stamp


def test_a_left_over_lru_row_never_evicts_a_live_entry(tmp_path: Path) -> None:
    """A store written before the stamp moved into the entry keeps lru rows the entries no longer name;
    eviction drops such a row and the entry it points at stays until its own row comes up."""
    from rsp.cache.store import object_key  # the key layout, to forge the left-over row

    clock = Clock()
    store = CacheStore(str(tmp_path / "small.lmdb"), 1 * MIB, clock=clock)
    body = b"x" * 100_000
    capacity = store.budget // len(body)
    for i in range(capacity - 1):
        clock.t += 1
        assert store.put(entry(f"http://a/fill{i}".encode(), body))
    clock.t += 1
    assert store.put(entry(b"http://a/keep", body))  # the youngest entry, with a forged row older than all
    with store._env().begin(write=True) as txn:
        txn.put(b"\x00" * 8 + object_key(b"http://a/keep", b""), b"", db=store._lru)
    for i in range(2):
        clock.t += 1
        assert store.put(entry(f"http://a/more{i}".encode(), body))
    assert store.lookup(b"http://a/keep"), "a left-over row evicted a live entry"
    assert not store.lookup(b"http://a/fill0"), "the oldest entry was evicted instead"
    assert store.used() <= store.budget
    store.close()


def test_an_entry_of_an_older_format_is_a_miss_and_purged(store: CacheStore) -> None:
    from rsp.cache.store import object_key

    url = b"http://a/old"
    old = b"RSC1" + encode(entry(url))[4:]  # what an rsp before the RSC2 format left in a store
    with store._env().begin(write=True) as txn:
        txn.put(object_key(url, b""), old, db=store._objects)
    assert store.lookup(url) == []
    assert store.delete(url) == 1  # unreadable entries of the URI go with a purge
    assert store.count() == 0


def test_an_entry_stamped_older_than_the_last_lru_row_is_still_evicted_in_stamp_order(tmp_path: Path) -> None:
    """A put appends its LRU row (the usual newest stamp); one stamped earlier (another worker's newer stamp
    committed first, here a clock that went back) is written in its place, so eviction still goes oldest
    first and the byte count stays the sum of the entries."""
    clock = Clock()
    store = CacheStore(str(tmp_path / "order.lmdb"), 1 * MIB, clock=clock)
    body = b"x" * 100_000
    capacity = store.budget // len(body)
    urls = [f"http://a/{i}".encode() for i in range(capacity)]
    for i, url in enumerate(urls):
        clock.t = 1_800_000_000.0 + (100 - i if i == 1 else i)  # entry 1 the newest, then older stamps
        assert store.put(entry(url, body))
    with store._env().begin() as txn:
        assert txn.stat(store._lru)["entries"] == txn.stat(store._objects)["entries"] == capacity
    used = store.used()
    clock.t = 1_800_000_200.0
    assert store.put(entry(b"http://a/new", body)) and store.put(entry(b"http://a/new2", body))
    assert store.used() <= store.budget and store.used() >= used - 2 * 100_000
    assert store.lookup(urls[1]), "the newest stamp survived eviction"
    assert not store.lookup(urls[0]), "the oldest stamp was evicted"
    # A replaced entry (the put that finds its key) keeps the count: the old charge out, the new in.
    before, count = store.used(), store.count()
    assert store.put(entry(b"http://a/new", body))
    assert (store.used(), store.count()) == (before, count)
    store.close()
