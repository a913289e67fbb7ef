from __future__ import annotations

import pytest

from rsp.errors import ConfigError
from rsp.health.policy import RiseFall, Transition


def run(policy: RiseFall, results: str) -> list[Transition | None]:
    """`results`: one character per check, "s" success, "f" failure."""
    return [policy.observe(r == "s", "ok" if r == "s" else "connection refused") for r in results]


def test_starts_up_and_falls_after_fall_consecutive_failures() -> None:
    policy = RiseFall(rise=2, fall=3)
    assert policy.state == "up"
    assert run(policy, "ff") == [None, None]
    assert policy.observe(False, "timeout") == Transition("down", 3, "timeout")
    assert policy.state == "down"


def test_a_success_resets_the_failure_run() -> None:
    policy = RiseFall(rise=2, fall=3)
    assert run(policy, "ffsff") == [None] * 5
    assert policy.state == "up"
    assert run(policy, "f")[0] == Transition("down", 3, "connection refused")


def test_rises_after_rise_consecutive_successes() -> None:
    policy = RiseFall(rise=2, fall=1)
    assert run(policy, "f") == [Transition("down", 1, "connection refused")]
    assert run(policy, "sfs") == [None, None, None]  # the failure broke the run
    assert run(policy, "s") == [Transition("up", 2, "ok")]
    assert policy.state == "up"


def test_no_transition_while_the_state_holds() -> None:
    policy = RiseFall(rise=1, fall=1)
    assert run(policy, "ssss") == [None] * 4
    assert run(policy, "f")[0] is not None
    assert run(policy, "fff") == [None] * 3


def test_reset_adopts_a_state_set_elsewhere() -> None:
    policy = RiseFall(rise=2, fall=2)
    policy.observe(False, "timeout")
    policy.reset("down")  # e.g. outlier detection ejected it
    assert policy.state == "down"
    assert run(policy, "s") == [None]
    assert run(policy, "s") == [Transition("up", 2, "ok")]


def test_invalid_counts_are_rejected() -> None:
    with pytest.raises(ConfigError):
        RiseFall(rise=0, fall=3)
    with pytest.raises(ValueError):
        RiseFall(rise=1, fall=1, state="maybe")
