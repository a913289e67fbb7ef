"""Rise/fall: when consecutive check results change a backend's state (HAProxy `rise` / `fall`).

HAProxy's documentation: "fall <count>: the number of consecutive unsuccessful health checks before
considering the server as dead", "rise <count>: the number of consecutive successful health checks before
considering the server as operational". That is what this implements: any success resets the failure run and
any failure resets the success run. (HAProxy's code keeps one health counter in 0..rise+fall-1 instead,
which on mixed sequences such as s s f s with rise 3 lets an earlier success count; the documented,
stricter rule is easier to reason about and test.) A backend starts UP, as HAProxy's servers do.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsp.errors import ConfigError

UP = "up"
DOWN = "down"


@dataclass(frozen=True, slots=True)
class Transition:
    new_state: str  # UP or DOWN
    count: int  # the consecutive results that caused it (== rise or fall)
    reason: str  # the reason given with the last result ("ok", "connection refused", "status 500", ...)


class RiseFall:
    __slots__ = ("_failures", "_successes", "fall", "rise", "state")

    def __init__(self, rise: int, fall: int, state: str = UP) -> None:
        if rise < 1 or fall < 1:
            raise ConfigError(f"rise and fall must be at least 1 (got rise={rise}, fall={fall})", key="health")
        if state not in (UP, DOWN):
            raise ValueError(f"state must be {UP!r} or {DOWN!r}, not {state!r}")
        self.rise = rise
        self.fall = fall
        self.state = state
        self._successes = 0
        self._failures = 0

    def observe(self, ok: bool, reason: str) -> Transition | None:
        """Count one check result; return the transition it causes, if any."""
        if ok:
            self._failures = 0
            if self.state == UP:
                return None
            self._successes += 1
            if self._successes < self.rise:
                return None
            self.state = UP
            self._successes = 0
            return Transition(UP, self.rise, reason)
        self._successes = 0
        if self.state == DOWN:
            return None
        self._failures += 1
        if self._failures < self.fall:
            return None
        self.state = DOWN
        self._failures = 0
        return Transition(DOWN, self.fall, reason)

    def reset(self, state: str) -> None:
        """Adopt `state` set by someone else (outlier detection, the runtime API) without a transition; the
        next transition needs a full run of `rise` or `fall` results from here."""
        if state not in (UP, DOWN):
            raise ValueError(f"state must be {UP!r} or {DOWN!r}, not {state!r}")
        self.state = state
        self._successes = 0
        self._failures = 0
