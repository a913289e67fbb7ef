"""Passive health checks (outlier detection): eject a backend after consecutive connection failures.

Like Envoy's consecutive-failure outlier detection and HAProxy's `observe layer4` + `error-limit`: the proxy
reports each connection outcome; `failures_to_eject` consecutive failures take the backend out (record.up =
False) for `cooldown` seconds.

What brings it back (the choice made here):
- `restore=True` (the pool has no active checks): `expire()` marks it up again once the cool-down has passed;
  the next connection tries it, and `failures_to_eject` more failures eject it again.
- `restore=False` (the pool has active checks): the detector never marks a backend up. The active checker sees
  the record down, adopts that state (RiseFall.reset) and needs `rise` successful checks to bring it back, as
  HAProxy's `on-error mark-down` does. `expire()` then only forgets ejections that others have undone.

`record_failure` also counts the failure in `record.failures` (the total shown by the runtime API): the proxy
reports failures here and does not touch that counter itself.
"""

from __future__ import annotations

from collections.abc import Callable

from rsp.errors import ConfigError
from rsp.upstream.records import BackendRecord


class OutlierDetector:
    __slots__ = ("_clock", "_consecutive", "_ejected", "cooldown", "failures_to_eject", "restore")

    def __init__(
        self,
        failures_to_eject: int,
        cooldown: float,
        clock: Callable[[], float],
        *,
        restore: bool = True,
    ) -> None:
        if failures_to_eject < 1:
            raise ConfigError(
                f"failures_to_eject must be at least 1 (got {failures_to_eject})", key="passive_failures"
            )
        self.failures_to_eject = failures_to_eject
        self.cooldown = cooldown
        self.restore = restore
        self._clock = clock
        self._consecutive: dict[BackendRecord, int] = {}
        self._ejected: dict[BackendRecord, float] = {}  # record -> when its cool-down ends

    def record_failure(self, record: BackendRecord) -> bool:
        """Count a failed connection to `record`; True if this failure just ejected it (the caller then
        logs it and updates the balancer)."""
        record.failures += 1
        if not record.up:
            # Already down (ejected, or by the active checker): nothing more to decide.
            self._consecutive.pop(record, None)
            return False
        count = self._consecutive.get(record, 0) + 1
        if count < self.failures_to_eject:
            self._consecutive[record] = count
            return False
        self._consecutive.pop(record, None)
        record.up = False
        self._ejected[record] = self._clock() + self.cooldown
        return True

    def eject(self, record: BackendRecord) -> None:
        """Eject `record` now, for the cool-down: the decision was made elsewhere (another worker's traffic)."""
        self._consecutive.pop(record, None)
        record.up = False
        self._ejected[record] = self._clock() + self.cooldown

    def record_success(self, record: BackendRecord) -> None:
        """A connection to `record` succeeded: its failure run starts over."""
        if record in self._consecutive:
            del self._consecutive[record]

    def consecutive(self, record: BackendRecord) -> int:
        return self._consecutive.get(record, 0)

    def ejected_until(self, record: BackendRecord) -> float | None:
        return self._ejected.get(record)

    def expire(self) -> list[BackendRecord]:
        """Records whose cool-down has passed, now marked up again (only with `restore`). The caller updates
        the balancer when the list is not empty. Ejections undone by someone else are forgotten silently."""
        if not self._ejected:
            return []
        now = self._clock()
        restored: list[BackendRecord] = []
        for record, until in list(self._ejected.items()):
            if record.up:
                del self._ejected[record]
            elif self.restore and now >= until:
                del self._ejected[record]
                record.up = True
                restored.append(record)
        return restored

    def next_expiry(self) -> float | None:
        """When the earliest cool-down ends (clock time), so the caller can schedule expire(); None if no
        restore is pending (with `restore=False` nothing is ever due)."""
        if not self.restore or not self._ejected:
            return None
        return min(self._ejected.values())
