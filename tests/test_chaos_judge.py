"""The chaos soak's judge (tests/support/chaos_judge.py), on made-up histories: no sockets, no clock."""

from __future__ import annotations

from support.chaos_backend import OK, RESET, SLOW, STALL, Receipt, Span, phase_at
from support.chaos_client import Attempt
from support.chaos_judge import (
    BACKEND_FAILED_IT,
    NO_HEALTHY,
    NOT_IDEMPOTENT,
    VIOLATION,
    WORKER_KILLED,
    Member,
    explain,
    judge,
)

SETTLE = 5.0
INF = float("inf")
# a: reset from 0 to 10, then ok; b: always reset.
SCHEDULES = {"a": [Span(0, 10, RESET), Span(10, INF, OK)], "b": [Span(0, INF, RESET)],
             "d": [Span(0, INF, SLOW)]}
MEMBERS = [Member("a", -INF, INF), Member("b", -INF, INF)]


def failed(start: float, kind: str = "get", outcome: str = "status_502", conn_opened: float = 0.0) -> Attempt:
    return Attempt("c0-1", kind, start, end=start + 0.5, conn_opened=conn_opened, outcome=outcome)


def why(attempt: Attempt, members: list[Member] = MEMBERS, kills: tuple[tuple[float, float], ...] = (),
        receipts: dict[str, list[Receipt]] | None = None) -> str:
    return explain(attempt, SCHEDULES, members, kills, receipts or {}, SETTLE)


def test_a_failure_while_a_backend_has_been_healthy_for_the_settle_time_is_a_violation() -> None:
    assert why(failed(16.0)) == VIOLATION


def test_a_backend_that_came_back_less_than_settle_ago_does_not_count_as_healthy() -> None:
    assert why(failed(12.0)) == NO_HEALTHY
    assert why(failed(3.0)) == NO_HEALTHY


def test_posts_are_not_judged_and_kills_excuse_only_connections_open_across_them() -> None:
    assert why(failed(16.0, kind="post")) == NOT_IDEMPOTENT
    assert why(failed(16.0, conn_opened=15.0), kills=((16.2, 16.25),)) == WORKER_KILLED
    # connecting began after the SIGKILL was sent but before the worker was gone: it may have accepted it
    assert why(failed(16.0, conn_opened=16.22), kills=((16.2, 16.25),)) == WORKER_KILLED
    assert why(failed(16.0, conn_opened=16.3), kills=((16.2, 16.25),)) == VIOLATION  # after the worker was gone
    assert why(failed(16.0, conn_opened=15.0), kills=((17.0, 17.1),)) == VIOLATION  # killed after it ended


def test_a_backend_that_stalled_the_request_excuses_it_but_a_reset_does_not() -> None:
    assert why(failed(16.0), receipts={"c0-1": [Receipt("a", STALL, 16.1)]}) == BACKEND_FAILED_IT
    assert why(failed(16.0), receipts={"c0-1": [Receipt("b", RESET, 16.1)]}) == VIOLATION


def test_an_added_backend_counts_only_while_surely_in_the_pool() -> None:
    with_d = [*MEMBERS, Member("d", 0.0, 20.0)]
    assert why(failed(8.0), with_d) == VIOLATION  # d healthy and in the pool since 0 (> settle before 8)
    assert why(failed(3.0), with_d) == NO_HEALTHY  # added less than settle before
    assert why(failed(19.8), [MEMBERS[1], Member("d", 0.0, 20.0)]) == NO_HEALTHY  # removed before it ended


def test_judge_counts_served_aborted_and_a_wrong_body_as_a_violation_in_any_case() -> None:
    attempts = [Attempt("x", "get", 1.0, 1.1, outcome="ok"), Attempt("y", "abort_after_send", 1.0, 1.1,
                                                                     outcome="aborted"),
                failed(3.0, outcome="wrong_body"), failed(3.0)]
    verdict = judge(attempts, SCHEDULES, MEMBERS, (), {}, SETTLE)
    assert (verdict.attempted, verdict.served, verdict.aborted) == (4, 1, 1)
    assert verdict.errors == {"wrong_body": 1, "status_502": 1}
    assert verdict.judged == {VIOLATION: 1, NO_HEALTHY: 1}
    assert [a.outcome for a in verdict.violations] == ["wrong_body"]


def test_phase_at_reads_the_schedule() -> None:
    assert [phase_at(SCHEDULES["a"], t) for t in (0.0, 9.9, 10.0, 1e9)] == [RESET, RESET, OK, OK]
