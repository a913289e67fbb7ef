"""Each try's times to the backend, as nginx's $upstream_connect_time, $upstream_header_time and
$upstream_response_time report them (sans-IO: the session passes the clock's readings in)."""

from __future__ import annotations

from typing import Final

# A step a try did not reach (a refused connect has no connect or header time): nginx prints "-".
NOT_REACHED: Final = -1.0
_START, _CONNECTED, _HEADER, _END = 0, 1, 2, 3


class TryTimes:
    """Per try: [start, connected, response head, end] on one clock, NOT_REACHED until reached."""

    __slots__ = ("tries",)

    def __init__(self) -> None:
        self.tries: list[list[float]] = []

    def begin(self, now: float) -> None:
        """A try begins (the one before it, if any, ended now: it failed)."""
        tries = self.tries
        if tries and tries[-1][_END] < 0:
            tries[-1][_END] = now
        tries.append([now, NOT_REACHED, NOT_REACHED, NOT_REACHED])

    def connected(self, now: float) -> None:
        self._mark(_CONNECTED, now)

    def header(self, now: float) -> None:
        self._mark(_HEADER, now)

    def end(self, now: float) -> None:
        self._mark(_END, now)

    def _mark(self, step: int, now: float) -> None:
        tries = self.tries
        if tries and tries[-1][step] < 0:
            tries[-1][step] = now

    def durations(self, now: float) -> tuple[tuple[float, float, float], ...]:
        """Per try: (connect, header, response) seconds from its start, NOT_REACHED for a step it did not
        reach; a try not ended yet counts its response time to `now`."""
        out: list[tuple[float, float, float]] = []
        for start, connected, header, end in self.tries:
            out.append((connected - start if connected >= 0 else NOT_REACHED,
                        header - start if header >= 0 else NOT_REACHED,
                        max(0.0, (end if end >= 0 else now) - start)))
        return tuple(out)


def nginx_times(durations: tuple[tuple[float, float, float], ...], step: int) -> bytes | None:
    """One of the three as nginx writes it: seconds with millisecond resolution per try, ", " between tries,
    "-" for a step not reached; None (no value) when no try was made."""
    if not durations:
        return None
    return ", ".join("-" if t[step] < 0 else f"{t[step]:.3f}" for t in durations).encode("ascii")


class TryTiming:
    """An exchange's tries as its filters see them: the timeouts a balancer filter set for the coming try
    (ngx.balancer.set_timeouts: one try's, cleared for the next) and, when a filter may read them, each try's
    times (`timed`: made at the first try, on the session's loop-iteration clock as nginx's
    $upstream_*_time are on its cached time)."""

    __slots__ = ("timed", "timeouts", "times")

    def __init__(self, timed: bool) -> None:
        self.timed = timed
        self.times: TryTimes | None = None
        self.timeouts: tuple[float, float, float] | None = None  # (connect, send, read), when set

    def next_try(self) -> None:
        """A try is about to be chosen: the last one's timeouts no longer hold."""
        self.timeouts = None

    def begin(self, now: float) -> tuple[float, float]:
        """A try begins (the one before, if any, ended now): its (connect, read) timeouts, 0 for the pool's."""
        times = self.times
        if times is None and self.timed:
            times = self.times = TryTimes()
        if times is not None:
            times.begin(now)
        timeouts = self.timeouts
        return (timeouts[0], timeouts[2]) if timeouts is not None else (0.0, 0.0)

    def connected(self, now: float) -> None:
        if self.times is not None:
            self.times.connected(now)

    def header(self, now: float) -> None:
        if self.times is not None:
            self.times.header(now)

    def end(self, now: float) -> None:
        if self.times is not None:
            self.times.end(now)

    def durations(self, now: float) -> tuple[tuple[float, float, float], ...]:
        times = self.times
        return times.durations(now) if times is not None else ()
