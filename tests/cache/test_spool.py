"""The spool a fetch writes for waiters in other processes (rsp.cache.spool): its records, the board that says a
waiter wants one, the files, and a dead fetcher's spool; then through CacheFilter's phases with a fake clock."""

from __future__ import annotations

import os
from pathlib import Path

from rsp.cache.cache_filter import LOCK_HOLD, POLL_FIRST, CacheFilter
from rsp.cache.coalescing import WATCH, WATCH_IDLE
from rsp.cache.entry import StoredResponse
from rsp.cache.spool import (
    DATA,
    END,
    FAIL,
    HEAD,
    PAGE,
    READ_SIZE,
    WANTED,
    Spools,
    decode_head,
    head_record,
    parse,
    record,
    spool_dir,
)
from rsp.cache.store import CLAIMED, CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import UNKNOWN_LENGTH, Request, Response
from rsp.pipeline.phases import SUSPEND
from support.cache_exchange import Clock, Exchange, Timers, xcache
from support.forked import run_forked

URL = b"http://example.com/s"


def files(directory: str) -> list[str]:
    return sorted(os.listdir(directory))


def test_records_are_parsed_once_complete() -> None:
    stream = record(DATA, b"first") + record(DATA, b"") + record(END)
    for cut in range(len(stream) + 1):  # however the writes were split, the same records come out
        got, used = parse(stream[:cut])
        rest, more = parse(stream[used:])
        assert got + rest == [(DATA, b"first"), (DATA, b""), (END, b"")]
        assert used + more == len(stream)


def test_a_head_record_holds_the_entry_and_the_body_length() -> None:
    pending = StoredResponse(URL, 200, [(b"Content-Type", b"text/plain")], b"", selecting=((b"accept", b"x"),),
                             lifetime=60.0, response_time=5.0)
    ((kind, payload),), _ = parse(head_record(pending, 1234))
    entry, length = decode_head(payload)
    assert (kind, length, entry.url, entry.headers, entry.selecting, entry.lifetime) == (
        HEAD, 1234, URL, [(b"Content-Type", b"text/plain")], ((b"accept", b"x"),), 60.0)


def test_the_board_says_which_uris_are_wanted(tmp_path: Path) -> None:
    here, there = Spools(str(tmp_path / "s"), 100), Spools(str(tmp_path / "s"), 100)  # two processes' views
    assert not here.wanted(URL)
    there.want(URL)
    assert here.wanted(URL) and not here.wanted(b"http://example.com/other")
    here.unwant(URL)
    assert not there.wanted(URL)
    assert files(str(tmp_path / "s")) == [WANTED]
    there.want(URL)
    there.want(b"http://example.com/other")
    here.unwant(b"http://example.com/other")  # done with another URI: ANY is cleared with its slot
    assert not here.wanted(URL) and here.asked(URL)  # a fetch's head looks at ANY first; the watch does not
    there.want(URL)  # the waiter's next poll
    assert here.wanted(URL)


def test_a_waiter_answered_from_the_store_is_no_longer_wanting(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    assert store.claim(URL, clock.t, LOCK_HOLD) == CLAIMED  # another worker's fetch, which writes no spool
    far = waiter(flt)
    board = Spools(spool_dir(store.path), 100)
    assert board.wanted(URL)
    store.put(StoredResponse(URL, 200, [], b"stored", response_time=clock.t, lifetime=60.0), True)
    timers.run()
    assert [r.body for r in far.answers] == [b"stored"] and not board.wanted(URL) and not board.asked(URL)


def test_a_spool_is_read_as_it_is_written_and_outlives_its_name(tmp_path: Path) -> None:
    spools = Spools(str(tmp_path / "s"), 100)
    writer = spools.create(URL, record(HEAD, b"h"), 0)
    assert writer is not None
    reader = spools.open(URL)
    assert reader is not None and not reader.writer_gone()
    assert reader.read() == [(HEAD, b"h")]
    assert writer.data(b"part") and reader.read() == [(DATA, b"part")]
    assert reader.read() == []
    writer.end()
    assert files(str(tmp_path / "s")) == [WANTED] and spools.open(URL) is None  # unlinked at its end
    assert reader.read() == [(END, b"")] and reader.writer_gone()  # ... but read on by who has it open
    reader.close()


def test_a_record_read_half_written_comes_out_whole_on_the_next_read(tmp_path: Path) -> None:
    spools = Spools(str(tmp_path / "s"), 100)
    writer = spools.create(URL, record(HEAD, b"h"), 0)
    reader = spools.open(URL)
    assert writer is not None and reader is not None
    part = record(DATA, b"a body part")
    os.write(writer.fd, part[:7])  # as a reader may find a write under way
    assert reader.read() == [(HEAD, b"h")]
    os.write(writer.fd, part[7:])
    assert reader.read() == [(DATA, b"a body part")]
    writer.end()
    reader.close()


def test_past_its_bound_a_spool_keeps_only_its_last_bound_of_bytes(tmp_path: Path) -> None:
    """An unknown length outgrowing max_object: what lies more than the bound behind the end is punched out,
    a reader that keeps up reads on, one that far behind or opening then finds the hole."""
    spools = Spools(str(tmp_path / "s"), PAGE)
    writer = spools.create(URL, record(HEAD, b"h"), 0)
    keeping, behind = spools.open(URL), spools.open(URL)
    assert writer is not None and keeping is not None and behind is not None
    for reader in (keeping, behind):
        assert reader.read() == [(HEAD, b"h")]
        reader.holes = True  # (what its waiter sets when the head says the length is unknown)
    part = b"x" * 1000
    for _ in range(20):
        assert writer.data(part)
        assert keeping.read() == [(DATA, part)]
    assert os.lseek(writer.fd, 0, os.SEEK_DATA) >= 3 * PAGE  # punched ...
    assert os.fstat(writer.fd).st_blocks * 512 <= 2 * PAGE  # ... so it holds about the bound, no more
    assert behind.read() == [(FAIL, b"")]
    late = spools.open(URL)
    assert late is not None and late.read()[0][0] != HEAD  # its head is gone
    writer.end()
    assert keeping.read() == [(END, b"")]
    for reader in (keeping, behind, late):
        reader.close()


def test_a_live_fetch_keeps_its_spool_and_a_dead_ones_is_replaced(tmp_path: Path) -> None:
    spools = Spools(str(tmp_path / "s"), 100)
    first = spools.create(URL, record(HEAD, b"one"), 0)
    assert first is not None
    assert spools.create(URL, record(HEAD, b"two"), 0) is None  # a second claim while the first still spools
    first.fail()

    def die_spooling(fd: int) -> int:  # a worker killed mid-fetch: its spool stays, its lock goes
        return 0 if Spools(str(tmp_path / "s"), 100).create(URL, record(HEAD, b"dead"), 0) else 1

    assert run_forked(die_spooling)[0] == 0
    stale = spools.open(URL)
    assert stale is not None and stale.read() == [(HEAD, b"dead")] and stale.writer_gone()
    stale.close()
    again = spools.create(URL, record(HEAD, b"three"), 0)
    assert again is not None
    reader = spools.open(URL)
    assert reader is not None and reader.read() == [(HEAD, b"three")]
    reader.close()
    again.end()


def test_a_process_sweeps_dead_spools_when_it_maps_the_board(tmp_path: Path) -> None:
    directory = str(tmp_path / "s")
    assert run_forked(lambda fd: 0 if Spools(directory, 100).create(URL, record(HEAD, b"dead"), 0) else 1)[0] == 0
    assert len(files(directory)) == 2
    Spools(directory, 100).wanted(URL)
    assert files(directory) == [WANTED]


# ---- through the filter: the fetcher's side ---------------------------------------------------------------


def fetcher(flt: CacheFilter, length: int = UNKNOWN_LENGTH) -> Exchange:
    ex = Exchange(Request(b"GET", b"http", b"example.com", b"/s", []))
    assert flt.access(ex) is None
    ex.response = Response(200, [(b"Cache-Control", b"max-age=60")], length)
    return ex


def test_nobody_wanting_it_a_fetch_writes_no_spool(store: CacheStore, clock: Clock) -> None:
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=Timers())
    ex = fetcher(flt)
    flt.header_filter(ex)
    flt.body_filter(ex, b"part", False)
    flt.body_filter(ex, b"", True)
    assert files(spool_dir(store.path)) == [WANTED]


def test_a_wanted_fetch_spools_its_head_each_part_and_its_end(store: CacheStore, clock: Clock) -> None:
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=Timers())
    other = Spools(spool_dir(store.path), 1 << 20)  # a waiter in another process
    other.want(URL)
    ex = fetcher(flt, 9)
    flt.header_filter(ex)
    reader = other.open(URL)
    assert reader is not None
    ((kind, payload),) = reader.read()
    entry, length = decode_head(payload)
    assert (kind, entry.url, length) == (HEAD, URL, 9)
    flt.body_filter(ex, b"first", False)
    assert reader.read() == [(DATA, b"first")]
    flt.body_filter(ex, b"last", True)
    assert reader.read() == [(DATA, b"last"), (END, b"")]
    assert not other.wanted(URL) and files(spool_dir(store.path)) == [WANTED]
    reader.close()


def test_a_waiter_after_the_head_gets_a_spool_with_the_body_so_far(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    ex = fetcher(flt)
    flt.header_filter(ex)
    flt.body_filter(ex, b"one ", False)
    other = Spools(spool_dir(store.path), 1 << 20)
    other.want(URL)
    flt.body_filter(ex, b"two ", False)
    assert other.open(URL) is None  # body parts do not look at the board (a miss nobody waits for pays less)
    timers.run()  # the watch does
    reader = other.open(URL)
    assert reader is not None
    assert [(kind, payload if kind == DATA else b"") for kind, payload in reader.read()] == [
        (HEAD, b""), (DATA, b"one two ")]
    flt.body_filter(ex, b"three", True)
    assert reader.read() == [(DATA, b"three"), (END, b"")]
    reader.close()


def test_a_failed_fetch_ends_its_spool_with_fail_an_oversized_one_with_all_of_it(store: CacheStore,
                                                                                 clock: Clock) -> None:
    flt = CacheFilter(CacheSettings("t", max_object=8), store, clock, call_later=Timers())
    other = Spools(spool_dir(store.path), 1 << 20)
    for parts, last in (([], FAIL), ([b"0123456", b"789"], END)):  # the backend fails; the body outgrows max_object
        other.want(URL)
        ex = fetcher(flt)
        flt.header_filter(ex)
        reader = other.open(URL)
        assert reader is not None
        for part in parts:
            flt.body_filter(ex, part, False)
        if last == END:
            flt.body_filter(ex, b"", True)
        flt.log(ex)
        kinds = [kind for kind, _ in reader.read()]
        assert kinds == [HEAD] + [DATA] * len(parts) + [last]
        reader.close()
        assert other.open(URL) is None and store.lookup(URL) == []
        clock.t += 11  # past the PASS mark an oversized response leaves


# ---- through two filters on one store: a waiter in another process follows the spool --------------------------


def two_workers(store: CacheStore, clock: Clock, **settings: object) -> tuple[CacheFilter, CacheFilter, Timers]:
    """The fetcher's worker and another one (its own waiting list and board mapping; LMDB allows one
    environment per file per process, so the store object is shared), with the other's timers."""
    timers = Timers()
    here = CacheFilter(CacheSettings("t", **settings), store, clock, call_later=Timers())  # type: ignore[arg-type]
    there = CacheFilter(CacheSettings("t", **settings), store, clock, call_later=timers)  # type: ignore[arg-type]
    return here, there, timers


def waiter(flt: CacheFilter, headers: list[tuple[bytes, bytes]] | None = None) -> Exchange:
    ex = Exchange(Request(b"GET", b"http", b"example.com", b"/s", list(headers or [])))
    assert flt.access(ex) is SUSPEND
    return ex


def test_a_waiter_in_another_worker_gets_each_part_as_the_fetch_receives_it(store: CacheStore,
                                                                          clock: Clock) -> None:
    here, there, timers = two_workers(store, clock)
    ex = fetcher(here, 11)
    far = waiter(there)
    timers.run()  # no head yet: it polls on
    assert far.head is None and not far.resumed
    here.header_filter(ex)
    timers.run()
    assert far.head is not None and far.head.body_length == 11 and xcache(far.head) == b"HIT"
    assert far.parts == [] and timers.due[0][0] == POLL_FIRST
    assert here.body_filter(ex, b"first ", False) == b"first "
    timers.run()
    assert far.parts == [b"first "] and not far.ended  # before the fetch has the rest
    timers.run()  # nothing new: it polls less often
    assert timers.due[0][0] == 2 * POLL_FIRST
    here.body_filter(ex, b"last", True)
    here.log(ex)
    timers.run()
    assert (b"".join(far.parts), far.ended, far.resumed, far.reset, timers.due) == (b"first last", True, 0, "", [])
    assert [e.body for e in store.lookup(URL)] == [b"first last"]
    assert files(spool_dir(store.path)) == [WANTED] and there.figures()["coalesced"] == 1


def test_a_waiter_of_another_variant_in_another_worker_goes_to_the_backend(store: CacheStore,
                                                                           clock: Clock) -> None:
    here, there, timers = two_workers(store, clock)
    ex = Exchange(Request(b"GET", b"http", b"example.com", b"/s", [(b"Accept-Language", b"en")]))
    assert here.access(ex) is None
    other = waiter(there, [(b"Accept-Language", b"fr")])
    fresher = waiter(there, [(b"Cache-Control", b"min-fresh=120")])
    ex.response = Response(200, [(b"Cache-Control", b"max-age=60"), (b"Vary", b"Accept-Language")], 4)
    here.header_filter(ex)
    timers.run()
    assert (other.head, other.resumed, fresher.head, fresher.resumed) == (None, 1, None, 1)


def test_a_fetch_failing_after_its_head_resets_the_waiters_in_another_worker(store: CacheStore,
                                                                             clock: Clock) -> None:
    here, there, timers = two_workers(store, clock, max_object=8)
    for parts in ([b"part"], [b"0123456", b"789"]):  # the backend dies (the second time past max_object)
        ex = fetcher(here)
        far = waiter(there)
        here.header_filter(ex)
        timers.run()
        for part in parts:
            here.body_filter(ex, part, False)
        here.log(ex)
        timers.run()
        assert far.head is not None and far.reset and not far.ended and not far.resumed
        assert timers.due == [] and store.lookup(URL) == []
        clock.t += 11  # past the PASS mark an oversized response leaves


def test_a_fetch_failing_before_its_head_sends_the_waiter_in_another_worker_to_the_backend(
        store: CacheStore, clock: Clock) -> None:
    here, there, timers = two_workers(store, clock)
    ex = fetcher(here)
    far = waiter(there)
    here.log(ex)
    timers.run()
    assert (far.head, far.resumed) == (None, 1)


def test_a_dead_fetchers_spool_resets_its_follower_and_is_removed(store: CacheStore, clock: Clock) -> None:
    def fetch_and_die(fd: int) -> int:  # a worker killed after its head and a first part
        spools = Spools(spool_dir(store.path), 1 << 20)
        pending = StoredResponse(URL, 200, [(b"Cache-Control", b"max-age=60")], b"", response_time=clock.t,
                                 lifetime=60.0)
        writer = spools.create(URL, head_record(pending, UNKNOWN_LENGTH), 0)
        return 0 if writer is not None and writer.data(b"first") else 1

    assert store.claim(URL, clock.t, LOCK_HOLD) == CLAIMED  # (its claim, still in force)
    timers = Timers()
    there = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    far = waiter(there)  # (before the spool: mapping the board sweeps dead spools)
    assert run_forked(fetch_and_die)[0] == 0
    timers.run()
    assert far.head is not None and far.parts == [b"first"]
    timers.run()
    assert far.reset and timers.due == [] and files(spool_dir(store.path)) == [WANTED]


def test_a_fetch_whose_backend_pauses_after_the_head_spools_for_a_waiter_that_comes_then(
        store: CacheStore, clock: Clock) -> None:
    """The fetcher looks at the board at its head, and every WATCH seconds after
    (its backend may send nothing for a while)."""
    fetch_timers, timers = Timers(), Timers()
    here = CacheFilter(CacheSettings("t"), store, clock, call_later=fetch_timers)
    there = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    ex = fetcher(here)
    here.header_filter(ex)
    here.body_filter(ex, b"first ", False)  # nobody wanted it yet: no spool
    assert [delay for delay, _ in fetch_timers.due] == [WATCH]
    far = waiter(there)
    timers.run()
    assert far.head is None
    fetch_timers.run()  # the look finds the waiter's slot: the head and the body so far
    timers.run()
    assert far.head is not None and far.parts == [b"first "]
    here.body_filter(ex, b"last", True)
    timers.run()
    assert (b"".join(far.parts), far.ended) == (b"first last", True)
    for _ in range(WATCH_IDLE + 1):  # nothing to watch: the look stays armed a while, then stops
        assert len(fetch_timers.due) == 1
        fetch_timers.run()
    assert fetch_timers.due == []


def test_a_follower_takes_a_large_part_in_reads_of_bounded_size(store: CacheStore, clock: Clock) -> None:
    here, there, timers = two_workers(store, clock)
    ex = fetcher(here)
    far = waiter(there)
    here.header_filter(ex)
    big = bytes(range(256)) * (READ_SIZE // 256 + 4)  # a little more than one read
    here.body_filter(ex, big, False)
    timers.run()  # the head, and the first READ_SIZE of the part's record
    assert far.head is not None and far.parts == []
    assert [delay for delay, _ in timers.due] == [0.0]  # the rest is there already: at once
    timers.run()
    assert far.parts == [big]
    here.body_filter(ex, b"", True)
    timers.run()
    assert far.ended


def test_an_unknown_length_past_max_object_streams_whole_to_every_waiter(store: CacheStore, clock: Clock) -> None:
    """Not stored, but its waiters get all of it, in its worker and in another (Varnish streams to all its
    waiters); one in a third worker that falls more than max_object behind is reset, as its spool keeps no
    more (issue 21: an object over max_object is not buffered)."""
    here, there, timers = two_workers(store, clock, max_object=PAGE)
    slow_timers = Timers()
    slow = CacheFilter(CacheSettings("t", max_object=PAGE), store, clock, call_later=slow_timers)
    ex = fetcher(here)
    near, far, behind = waiter(here), waiter(there), waiter(slow)
    here.header_filter(ex)
    timers.run()
    slow_timers.run()
    assert near.head is not None and far.head is not None and behind.head is not None
    part = b"y" * 1500
    for _ in range(8):
        here.body_filter(ex, part, False)
        timers.run()
    here.body_filter(ex, b"end", True)
    here.log(ex)
    timers.run()
    for streamed in (near, far):
        assert (b"".join(streamed.parts), streamed.ended, streamed.reset) == (part * 8 + b"end", True, "")
    slow_timers.run()
    assert behind.reset and not behind.ended
    assert store.lookup(URL) == [] and files(spool_dir(store.path)) == [WANTED]
