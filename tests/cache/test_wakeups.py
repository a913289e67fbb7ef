"""A waiter in another worker is woken when the fetch's spool is created or written (rsp.cache.wakeups: an
inotify watch on the spool directory, real here), not only at its next poll; whichever of the wake-up and the
timer comes first polls, once. Two filters on one store, a fake clock, the test's timers and a registry
standing for the loop's add_reader."""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from pathlib import Path

from rsp.cache.cache_filter import CacheFilter
from rsp.cache.store import CacheStore, url_prefix
from rsp.cache.wakeups import PRUNE_AT, Poll, Wakeups
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import UNKNOWN_LENGTH, Header, Request, Response
from rsp.pipeline.phases import SUSPEND
from support.cache_exchange import Clock, Exchange, Timers, xcache

URL = b"http://example.com/s"
Woken = Callable[[], None]


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def workers(store: CacheStore, clock: Clock) -> tuple[CacheFilter, CacheFilter, Timers, list[tuple[int, Woken]]]:
    """The fetcher's worker, another one with its timers, and what the other registered with its 'loop'."""
    timers = Timers()
    here = CacheFilter(CacheSettings("t"), store, clock, call_later=Timers())
    there = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    readers: list[tuple[int, Woken]] = []
    there.core.coalescer.wakeups.add_reader = lambda fd, callback: readers.append((fd, callback))
    return here, there, timers, readers


def get(flt: CacheFilter, headers: list[Header] | None = None) -> tuple[Exchange, object]:
    ex = Exchange(Request(b"GET", b"http", b"example.com", b"/s", list(headers or [])))
    return ex, flt.access(ex)


def test_the_spools_head_and_parts_wake_the_waiter(store: CacheStore, clock: Clock) -> None:
    here, there, timers, readers = workers(store, clock)
    ex, verdict = get(here)
    assert verdict is None
    far, verdict = get(there)
    assert verdict is SUSPEND
    ((fd, woken),) = readers  # watching since its first wait
    assert here.core.coalescer.wakeups.fd == -1  # the fetcher's worker has nobody waiting: no watch
    assert not readable(fd)
    ex.response = Response(200, [(b"Cache-Control", b"max-age=60")], UNKNOWN_LENGTH)
    here.header_filter(ex)  # wanted: the spool is created with the head
    assert readable(fd)
    woken()
    assert far.head is not None and xcache(far.head) == b"HIT"  # no timer has run
    here.body_filter(ex, b"first ", False)
    woken()
    assert far.parts == [b"first "]
    for _ in range(3):  # the timers armed meanwhile: spent ones do nothing, the last one polls and re-arms
        timers.run()
    assert far.parts == [b"first "] and len(timers.due) == 1
    here.body_filter(ex, b"last", True)
    here.log(ex)
    woken()
    assert (b"".join(far.parts), far.ended, far.reset) == (b"first last", True, "")
    timers.run()
    assert timers.due == [] and not readable(fd)


def test_a_304_wakes_the_waiters_of_another_worker(store: CacheStore, clock: Clock) -> None:
    here, there, timers, readers = workers(store, clock)
    ex, _ = get(here)
    ex.response = Response(200, [(b"Cache-Control", b"no-cache"), (b"ETag", b'"v1"')], 4)
    here.header_filter(ex)
    here.body_filter(ex, b"body", True)
    here.log(ex)
    clock.t += 1
    fetcher, verdict = get(here)
    assert verdict is None and fetcher.request.get(b"if-none-match") == b'"v1"'
    far, verdict = get(there)
    assert verdict is SUSPEND
    ((fd, woken),) = readers
    fetcher.response = Response(304, [(b"ETag", b'"v1"'), (b"Cache-Control", b"no-cache")], 0)
    here.header_filter(fetcher)
    assert readable(fd)
    woken()
    assert [(r.body, xcache(r.response)) for r in far.answers] == [(b"body", b"HIT")]
    timers.run()
    assert len(far.answers) == 1 and timers.due == []


def test_a_poll_runs_once_whichever_comes_first(tmp_path: Path) -> None:
    runs: list[int] = []

    def record() -> None:
        runs.append(1)

    poll = Poll(record)
    poll()
    poll()
    assert runs == [1] and poll.callback is not record  # (spent, it lets go of its waiter)
    os.mkdir(tmp_path / "s")
    wakeups = Wakeups(str(tmp_path / "s"), lambda fd, callback: None)
    for n in range(PRUNE_AT + 1):  # spent polls of URIs nobody waits for any more do not pile up
        spent = Poll(lambda: None)
        wakeups.add(b"http://example.com/%d" % n, spent)
        spent()
    live = Poll(lambda: runs.append(2))
    wakeups.add(URL, live)
    (tmp_path / "s" / "unrelated").write_bytes(b"x")  # an event for a name nobody waits for
    wakeups.woken()
    assert len(wakeups.polls) < PRUNE_AT and url_prefix(URL).hex() in wakeups.polls and runs == [1]
    os.close(wakeups.fd)


def test_without_a_loop_to_register_with_the_waiter_polls_as_before(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    there = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)  # (no running loop here)
    here = CacheFilter(CacheSettings("t"), store, clock, call_later=Timers())
    ex, _ = get(here)
    far, verdict = get(there)
    assert verdict is SUSPEND and there.core.coalescer.wakeups.off
    ex.response = Response(200, [(b"Cache-Control", b"max-age=60")], 4)
    here.header_filter(ex)
    timers.run()
    assert far.head is not None


def test_a_waiter_after_the_head_wakes_the_fetchers_worker(store: CacheStore, clock: Clock) -> None:
    """Its first want of the URI is written through the board's file: the fetcher's worker spools at once,
    not at its next look (every WATCH seconds)."""
    fetch_timers = Timers()
    here = CacheFilter(CacheSettings("t"), store, clock, call_later=fetch_timers)
    fetcher_readers: list[tuple[int, Woken]] = []
    here.core.coalescer.wakeups.add_reader = lambda fd, callback: fetcher_readers.append((fd, callback))
    _, there, _, readers = workers(store, clock)
    ex, _ = get(here)
    ex.response = Response(200, [(b"Cache-Control", b"max-age=60")], UNKNOWN_LENGTH)
    here.header_filter(ex)  # nobody wants it yet: no spool; the fetcher's worker watches from now on
    here.body_filter(ex, b"first ", False)
    ((fetch_fd, fetcher_woken),) = fetcher_readers
    assert not readable(fetch_fd)
    far, verdict = get(there)
    assert verdict is SUSPEND and readable(fetch_fd)
    fetcher_woken()  # no look has run (fetch_timers untouched): the spool is written now
    ((_, woken),) = readers
    woken()
    assert far.head is not None and far.parts == [b"first "]
    here.body_filter(ex, b"last", True)
    woken()
    assert (b"".join(far.parts), far.ended) == (b"first last", True)
