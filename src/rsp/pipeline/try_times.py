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
