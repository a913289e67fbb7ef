"""Restart delays for a child that exits: pure arithmetic over the times it is given, no clock of its own."""

from __future__ import annotations

# A child that dies at once is retried after half a second: fast enough that a one-off crash costs little,
# slow enough that a child failing in a loop costs a few starts per second at most.
DEFAULT_INITIAL_DELAY = 0.5
# The cap: a child that cannot start (missing binary, port taken) is retried twice a minute, not never.
DEFAULT_MAXIMUM_DELAY = 30.0
# A child that ran this long was healthy; its next crash starts the doubling again from the initial delay.
DEFAULT_RESET_AFTER = 10.0


class Backoff:
    """Delay before restarting a child: `initial` after a child that ran at least `reset_after` seconds,
    doubling (up to `maximum`) for each exit in a row that came sooner."""

    def __init__(
        self,
        initial: float = DEFAULT_INITIAL_DELAY,
        maximum: float = DEFAULT_MAXIMUM_DELAY,
        reset_after: float = DEFAULT_RESET_AFTER,
    ) -> None:
        if initial < 0 or maximum < initial or reset_after < 0:
            raise ValueError("Backoff needs 0 <= initial <= maximum and reset_after >= 0")
        self.initial = initial
        self.maximum = maximum
        self.reset_after = reset_after
        self._next = initial

    def delay_after_exit(self, started_at: float, exited_at: float) -> float:
        """The delay before the next start of a child that started at `started_at` and exited at `exited_at`."""
        if exited_at - started_at >= self.reset_after:
            self._next = self.initial
        delay = self._next
        self._next = min(self.maximum, max(self._next * 2, self.initial))
        return delay

    def reset(self) -> None:
        """Forget the exits so far (the child was stopped on purpose)."""
        self._next = self.initial
