"""Waking the waiters of this process that follow a fetch of another process (rsp.cache.coalescing) when that
fetch writes its spool, instead of at their next poll only (5 to 50 ms later).

Every spool is a file in one directory (rsp.cache.spool), so one inotify watch on it (rsp.linux.inotify) says
which spools were created or written: an event names the file, which is the hex of its URI's hash, and the
waiters of that URI poll at once. Their timers stay armed (a poll is a `Poll`: whichever of the timer and the
wake-up comes first runs it, the other finds it spent), so a lost event (the queue overflowed: everyone is
woken), or a spool whose writing sends none (its outcome found by polling the store), costs at most the
usual poll's delay.

The fetcher's side is woken too: a waiter's first want of a URI is also written through the board's file
(rsp.cache.spool's `call`), an event named `wanted`, and the processes with fetches past their head look at
the board at once (`on_board`) instead of at their next look (every 50 ms).

Nothing of this runs when nobody waits: the watch is made once per process (at its first fetch or its first
waiter on another's) and stays, one descriptor per process and cache; events come only from spool files,
which are written only when some process waits, and from a waiter's call on the board (its other writes to
the board go through the mapping, which makes no event). A process that cannot watch (no inotify, no loop to
register with) polls as before.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from rsp.cache.spool import WANTED
from rsp.cache.store import url_prefix
from rsp.logs import get_logger

AddReader = Callable[[int, Callable[[], None]], object]
# Names with a waiter once, kept (with their spent polls) until this many, then the spent ones are dropped.
PRUNE_AT = 64

_log = get_logger()


class Poll:
    """One poll of one waiter, run by its timer or by a wake-up, whichever comes first."""

    __slots__ = ("callback", "live")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.live = True

    def __call__(self) -> None:
        if self.live:
            self.live = False
            callback, self.callback = self.callback, _spent  # (a spent poll keeps no exchange alive)
            callback()


def _spent() -> None:
    pass


class Wakeups:
    """The polls waiting for spools of `directory`, by spool name. `add_reader(fd, callback)`: how to hear
    the watch (the running loop's when None)."""

    __slots__ = ("add_reader", "directory", "fd", "off", "on_board", "polls")

    def __init__(self, directory: str, add_reader: AddReader | None = None) -> None:
        self.directory = directory
        self.add_reader = add_reader
        self.fd = -1
        self.off = False
        self.polls: dict[str, list[Poll]] = {}
        self.on_board: Callable[[], None] | None = None  # run when a waiter calls on the board (Spools.call)

    def add(self, url: bytes, poll: Poll) -> None:
        """`poll` runs as soon as the spool of `url` is created or written (if it has not run by then)."""
        if self.fd < 0 and not self.watch():
            return
        name = url_prefix(url).hex()
        waiting = self.polls.get(name)
        if waiting is None:
            if len(self.polls) >= PRUNE_AT:
                self._prune()
            self.polls[name] = [poll]
        else:
            waiting[:] = [p for p in waiting if p.live]  # (each poll of a waiter adds one: keep the list short)
            waiting.append(poll)

    def watch(self) -> bool:
        """Make the watch (once): whether there is one."""
        if self.fd >= 0:
            return True
        if self.off:
            return False
        fd = -1
        try:
            from rsp.linux.inotify import watch_directory  # (here: ctypes only in a process that watches)

            add_reader = self.add_reader or asyncio.get_running_loop().add_reader
            fd = watch_directory(self.directory)
            add_reader(fd, self.woken)
        except Exception as exc:  # (no loop, no inotify: polls as before)
            _log.info("cache: this worker polls the spools of %s (no wake-up: %s)", self.directory, exc)
            if fd >= 0:
                os.close(fd)
            self.off = True
            return False
        self.fd = fd
        return True

    def woken(self) -> None:
        """The watch is readable: the polls of the spools named (of all, when events were lost) run now."""
        from rsp.linux.inotify import read_names  # (loaded by `watch`)

        names, lost = read_names(self.fd)
        polls = self.polls
        if lost:
            names = {WANTED, *polls}
        if WANTED in names and self.on_board is not None:
            self.on_board()
        for name in names:
            waiting = polls.pop(name, None)
            if waiting is not None:
                for poll in waiting:
                    poll()

    def _prune(self) -> None:
        """Forget the names whose polls are all spent (their waiters were answered by their timers)."""
        polls = self.polls
        for name in [name for name, waiting in polls.items() if not any(p.live for p in waiting)]:
            del polls[name]
