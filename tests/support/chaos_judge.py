"""The chaos soak's verdict, from what happened (pure: attempts, schedules, receipts, kills in, counts out).

The question: did an idempotent request ever fail while a healthy backend existed? Judged per failed
request, in this order (the first that applies explains it):

1. it was aborted by its client on purpose: not a failure;
2. not idempotent (POST): rsp may not retry it (RFC 9110 §9.2.2), not judged;
3. a worker was SIGKILLed while its connection was open: the connection began connecting before the
   killed worker was gone, and the request ended after the SIGKILL was sent. A connection on a killed
   process dies with it (which worker held it is not known, so this may also excuse a connection the other
   worker held). A kill is the window from sending SIGKILL to the process being gone, as the soak saw it;
4. a backend that received it stalled it or cut its response: rsp retries only before any response byte
   and never after a response timeout (the backend may have acted on it), so the user sees that backend's
   failure;
5. no backend was healthy (in an `ok` or `slow` phase, and in the pool) for the whole of
   [start - settle, end]: `settle` is how long rsp needs to learn that a backend came back (health checks'
   rise x interval plus their timeout, or the passive cooldown, whichever is longer);
6. otherwise: a **violation**: rsp failed an idempotent request although a healthy backend was there.

A response that names another request (`wrong_body`) is a violation whatever else happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from support.chaos_backend import CUT, STALL, Receipt, Span, healthy_throughout
from support.chaos_client import Attempt

NOT_IDEMPOTENT: Final = "not idempotent (POST: never retried)"
WORKER_KILLED: Final = "its connection was on a worker when one was SIGKILLed"
BACKEND_FAILED_IT: Final = "a backend that received it stalled or cut it"
NO_HEALTHY: Final = "no backend healthy through [start - settle, end]"
VIOLATION: Final = "VIOLATION: idempotent, failed, a healthy backend existed"
WRONG_BODY: Final = "wrong_body"


@dataclass(frozen=True)
class Member:
    """A backend in the pool from `start` to `end` (soak seconds)."""

    backend: str
    start: float
    end: float


@dataclass
class Verdict:
    attempted: int = 0
    served: int = 0
    aborted: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # failures by what the client saw
    judged: Counter[str] = field(default_factory=Counter)  # failures by explanation
    violations: list[Attempt] = field(default_factory=list)


def healthy_backend_existed(attempt: Attempt, schedules: Mapping[str, Sequence[Span]],
                            members: Sequence[Member], settle: float) -> bool:
    since = attempt.start - settle
    return any(m.start <= since and m.end >= attempt.end and healthy_throughout(schedules[m.backend], since,
                                                                                attempt.end)
               for m in members)


def explain(attempt: Attempt, schedules: Mapping[str, Sequence[Span]], members: Sequence[Member],
            kills: Sequence[tuple[float, float]], receipts: Mapping[str, Sequence[Receipt]], settle: float) -> str:
    if attempt.outcome == WRONG_BODY:
        return VIOLATION
    if not attempt.idempotent:
        return NOT_IDEMPOTENT
    if any(sent <= attempt.end and attempt.conn_opened <= gone for sent, gone in kills):
        return WORKER_KILLED
    if any(r.phase in (STALL, CUT) for r in receipts.get(attempt.rid, ())):
        return BACKEND_FAILED_IT
    if not healthy_backend_existed(attempt, schedules, members, settle):
        return NO_HEALTHY
    return VIOLATION


def judge(attempts: Sequence[Attempt], schedules: Mapping[str, Sequence[Span]], members: Sequence[Member],
          kills: Sequence[tuple[float, float]], receipts: Mapping[str, Sequence[Receipt]],
          settle: float) -> Verdict:
    verdict = Verdict(attempted=len(attempts))
    for attempt in attempts:
        if attempt.aborted:
            verdict.aborted += 1
        elif attempt.outcome == "ok":
            verdict.served += 1
        else:
            verdict.errors[attempt.outcome] += 1
            why = explain(attempt, schedules, members, kills, receipts, settle)
            verdict.judged[why] += 1
            if why == VIOLATION:
                verdict.violations.append(attempt)
    return verdict
