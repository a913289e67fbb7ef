from __future__ import annotations

from rsp.config.model import Backend
from rsp.health.passive import OutlierDetector
from rsp.upstream.records import BackendRecord


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(port: int = 9001) -> BackendRecord:
    return BackendRecord(Backend("127.0.0.1", port), 0, "web")


def test_consecutive_failures_eject_for_the_cooldown() -> None:
    clock = FakeClock()
    detector = OutlierDetector(3, 10.0, clock)
    rec = record()
    assert detector.record_failure(rec) is False
    assert detector.record_failure(rec) is False
    assert rec.up
    assert detector.record_failure(rec) is True
    assert not rec.up
    assert rec.failures == 3
    assert detector.next_expiry() == 1010.0
    clock.now = 1009.9
    assert detector.expire() == []
    assert not rec.up
    clock.now = 1010.0
    assert detector.expire() == [rec]
    assert rec.up
    assert detector.expire() == []
    assert detector.next_expiry() is None


def test_a_success_resets_the_run() -> None:
    detector = OutlierDetector(2, 5.0, FakeClock())
    rec = record()
    detector.record_failure(rec)
    detector.record_success(rec)
    assert detector.consecutive(rec) == 0
    assert detector.record_failure(rec) is False
    assert detector.record_failure(rec) is True


def test_failures_of_other_backends_do_not_add_up() -> None:
    detector = OutlierDetector(2, 5.0, FakeClock())
    a, b = record(9001), record(9002)
    assert detector.record_failure(a) is False
    assert detector.record_failure(b) is False
    assert a.up and b.up


def test_failures_while_down_count_but_do_not_eject_again() -> None:
    clock = FakeClock()
    detector = OutlierDetector(1, 5.0, clock)
    rec = record()
    assert detector.record_failure(rec) is True
    clock.now += 3
    assert detector.record_failure(rec) is False  # a straggler: the cool-down is not extended
    assert rec.failures == 2
    assert detector.ejected_until(rec) == 1005.0


def test_after_the_cooldown_new_failures_eject_again() -> None:
    clock = FakeClock()
    detector = OutlierDetector(2, 5.0, clock)
    rec = record()
    detector.record_failure(rec)
    detector.record_failure(rec)
    clock.now += 5
    assert detector.expire() == [rec]
    assert detector.record_failure(rec) is False  # the run starts over after the ejection
    assert detector.record_failure(rec) is True
    assert detector.ejected_until(rec) == clock.now + 5


def test_with_active_checks_the_detector_never_restores() -> None:
    clock = FakeClock()
    detector = OutlierDetector(1, 5.0, clock, restore=False)
    rec = record()
    assert detector.record_failure(rec) is True
    assert detector.next_expiry() is None
    clock.now += 100
    assert detector.expire() == []
    assert not rec.up
    rec.up = True  # the active checker brought it back
    assert detector.expire() == []
    assert detector.ejected_until(rec) is None  # forgotten
