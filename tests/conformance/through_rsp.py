"""The whole conformance corpus replayed through a running rsp in HTTP mode, and judged.

    cases = all_cases()                                   # every case of the three corpora, with what it expects
    with Shards(SHARDS) as shards:                        # one RecordingBackend per shard
        proxy = <start rsp with shards.config(ports)>     # one listener (and pool) per shard
        outcomes = replay_all(cases, shards, ports)       # shards replay in parallel threads
    print(summary(outcomes))                              # per-corpus pass / soft / fail / n/a

`python -m tests.conformance.through_rsp` (from the repository root) starts rsp itself, replays everything
and rewrites tests/conformance/RESULTS.md; test_through_rsp.py does the same under pytest, writing nothing.

Every case is sent by `replay.replay()` on a fresh client connection and gets the replay's Verdict (the
backend re-parses what rsp forwarded with the strict `judge`). Then, per case (`classify`):
- FAIL: the verdict is not ok (invalid forwarded HTTP, TE+CL, two Content-Length, a connection left
  open mid-request, more requests forwarded than answered); or a case that must be refused got more
  requests to the backend, or more 2xx answers, than it may; or a case that should be forwarded got a
  refusal (any status >= 400) without a documented reason, or fewer of its messages forwarded and
  answered than llhttp completes.
- SOFT: a case that should be forwarded was refused, and the refusal is a documented, deliberate
  choice: `harness.STRICTER` (the parser refuses the case with the listed reason, and rsp answers with
  the parser's status), `THROUGH_RSP_STRICTER` below; or a case llhttp refuses that rsp forwards by
  design (`harness.ACCEPTED`).
- PASS otherwise; N/A for the three HTTP Garden trophies whose payload is prose, and llhttp's
  skip-body fixture (a parser callback feature): their verdict must still be ok.

What each corpus expects (`Case.expect`, `Case.allowed`):
- desync-guardian: Severe -> "refuse" (nothing forwarded, no 2xx). Compliant, Acceptable -> "forward"
  (the one request reaches the backend). Ambiguous -> "either" (refused, or forwarded normalised; the
  parser-level harness counts the latter as soft, this table as pass: only the verdict decides here).
- llhttp requests (with `corpora.with_host`): a fixture whose log ends in an error -> "refuse", except
  that the messages llhttp completed before the error may be forwarded (`allowed`). A clean fixture ->
  "forward" exactly the messages llhttp completed. `lenient-*` -> "either" (refused or normalised, which
  the verdict checks). `*-finish`: finish=2 (end of stream mid-message) -> "refuse"; 0 -> "forward".
  The replay never half-closes, so an unfinished message simply never completes at the backend.
- HTTP Garden: every payload -> "either": refused, or normalised (the verdict is the test).
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

_TESTS_DIR = str(Path(__file__).resolve().parent.parent)
if _TESTS_DIR not in sys.path:  # `python -m tests.conformance.through_rsp` from the repository root
    sys.path.insert(0, _TESTS_DIR)

from conformance import corpora, harness  # noqa: E402
from conformance.replay import RecordingBackend, Verdict, replay  # noqa: E402

# Parallel client connections, each through its own rsp listener to its own RecordingBackend (a backend's
# marks attribute what arrives to one replay at a time). 4 keeps the run at ~10 s on 2 busy cores.
SHARDS = 4
# How long without a byte ends a replay's read. rsp answers a refused request at once and closes; a
# forwarded one is answered within a few ms on loopback. 0.15 s is the brief's bound, with a margin of
# ~50x over rsp's loopback latency on a loaded machine.
QUIET = 0.15
# Upper bound on one replay (the reads, the settle wait for the backend, everything).
REPLAY_TIMEOUT = 5.0

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"

REFUSE, FORWARD, EITHER, NOT_APPLICABLE = "refuse", "forward", "either", "n/a"

# Deliberate differences seen only through the proxy (the parser accepts the case, rsp's HTTP mode
# refuses it): case ident -> (status rsp answers with, reason).
_CONNECT_WHY = "CONNECT is a forward-proxy method; rsp is a reverse proxy (RFC 9110 §9.3.6, §15.6.2)"
THROUGH_RSP_STRICTER: dict[str, tuple[int, str]] = {
    "request/method.md: CONNECT request": (501, _CONNECT_WHY),
    "request/method.md: CONNECT request with CAPS": (501, _CONNECT_WHY),
    "request/uri.md: Underscore in hostname": (501, _CONNECT_WHY),
}


@dataclass(frozen=True)
class Case:
    corpus: str  # "desync-guardian" | "llhttp/request" | "http-garden"
    ident: str
    raw: bytes | None  # None: nothing to send (prose payload)
    expect: str  # REFUSE | FORWARD | EITHER | NOT_APPLICABLE
    allowed: int  # REFUSE: requests that may reach the backend; FORWARD: requests that must
    label: str = ""  # tier or fixture kind, for the report


@dataclass(frozen=True)
class Outcome:
    case: Case
    verdict: str  # "pass" | "soft" | "fail" | "n/a"
    detail: str


# -- the cases ------------------------------------------------------------------------------------------


def desync_cases() -> list[Case]:
    cases = []
    for item in corpora.load_desync_guardian():
        if item.tier == "Severe":
            expect = REFUSE
        elif item.tier == "Ambiguous":
            expect = EITHER
        else:
            expect = FORWARD
        cases.append(Case("desync-guardian", item.ident, item.raw, expect, 0 if expect == REFUSE else 1, item.tier))
    return cases


def llhttp_cases() -> list[Case]:
    cases = []
    for item in corpora.load_llhttp("request"):
        raw = corpora.with_host(item.raw)
        if item.meta.get("skipBody"):
            expect = NOT_APPLICABLE
        elif item.kind.endswith("-finish"):
            expect = REFUSE if item.finish == 2 else FORWARD
        elif item.lenient:
            expect = EITHER
        elif item.error_code is not None:
            expect = REFUSE
        else:
            expect = FORWARD
        label = item.kind if item.error_code is None else f"{item.kind}, llhttp error {item.error_reason}"
        cases.append(Case("llhttp/request", item.ident, raw, expect, item.completed, label))
    return cases


def garden_cases() -> list[Case]:
    return [
        Case("http-garden", t.ident, t.payload, EITHER if t.payload is not None else NOT_APPLICABLE, 0, t.section)
        for t in corpora.load_trophies()
    ]


def all_cases() -> list[Case]:
    return desync_cases() + llhttp_cases() + garden_cases()


# -- judging one replay ---------------------------------------------------------------------------------


def _statuses(verdict: Verdict) -> str:
    return ",".join(str(status) for status in verdict.statuses) or "none"


def _seen(verdict: Verdict) -> str:
    closed = ", closed" if verdict.client_closed else ""
    return f"forwarded {verdict.forwarded}, answered {_statuses(verdict)}{closed}"


def _documented_refusal(case: Case, verdict: Verdict) -> str | None:
    """Why rsp's refusal of this valid case is deliberate, or None when it is not documented."""
    refusal = next((status for status in verdict.statuses if status >= 400), None)
    listed = THROUGH_RSP_STRICTER.get(case.ident)
    if listed is not None:
        status, why = listed
        return f"refused by design ({status}: {why})" if refusal == status else None
    expected = harness.STRICTER.get(case.ident)
    if expected is None or case.raw is None:
        return None
    run = harness.feed(case.raw, eof=False)
    if run.error is None or expected not in str(run.error) or refusal != run.error.status:
        return None
    return f"refused by design ({run.error.status} {run.error})"


def classify(case: Case, verdict: Verdict | None) -> Outcome:
    """The outcome of one case given the replay's verdict (None: nothing was sent)."""
    if verdict is None:
        return Outcome(case, "n/a", "nothing to send (the payload is prose)")
    seen = _seen(verdict)
    if not verdict.ok:
        return Outcome(case, "fail", f"{'; '.join(verdict.problems)} ({seen})")
    successes = sum(1 for status in verdict.statuses if 200 <= status < 300)
    if case.expect == NOT_APPLICABLE:
        return Outcome(case, "n/a", f"a parser callback feature; exchange clean ({seen})")
    if case.expect == EITHER:
        return Outcome(case, "pass", seen)
    if case.expect == REFUSE:
        if verdict.forwarded <= case.allowed and successes <= case.allowed:
            return Outcome(case, "pass", seen)
        reason = harness.ACCEPTED.get(case.ident)
        if reason is not None:
            return Outcome(case, "soft", f"forwarded by design: {reason} ({seen})")
        return Outcome(case, "fail", f"must be refused, at most {case.allowed} forwarded ({seen})")
    # FORWARD. Any refusal counts, also when llhttp completes no message (a fixture whose body is cut).
    if any(status >= 400 for status in verdict.statuses):
        documented = _documented_refusal(case, verdict)
        if documented is not None:
            return Outcome(case, "soft", f"{documented} ({seen})")
        return Outcome(case, "fail", f"refused a valid case ({seen})")
    if verdict.forwarded == case.allowed and successes >= case.allowed:
        return Outcome(case, "pass", seen)
    return Outcome(case, "fail", f"expected {case.allowed} forwarded and answered ({seen})")


# -- running --------------------------------------------------------------------------------------------


class Shards:
    """SHARDS recording backends; `config(ports)` is the rsp config with one listener and pool per shard."""

    def __init__(self, count: int = SHARDS) -> None:
        self.backends = [RecordingBackend() for _ in range(count)]

    def __enter__(self) -> Shards:
        started: list[RecordingBackend] = []
        try:
            for backend in self.backends:
                started.append(backend.start())
        except BaseException:
            for backend in started:
                backend.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        for backend in self.backends:
            backend.stop()

    def config(self, ports: Sequence[int]) -> str:
        listeners = ", ".join(
            f'{{ address = "127.0.0.1", port = {port}, mode = "http", pool = "shard{index}" }}'
            for index, port in enumerate(ports)
        )
        pools = ", ".join(
            f'shard{index} = {{ backends = {{ "127.0.0.1:{backend.port}" }} }}'
            for index, backend in enumerate(self.backends)
        )
        return (f"listen = {{ {listeners} }}\npools = {{ {pools} }}\nhttp = {{ access_log = \"off\" }}\n"
                "workers = 2\n")


def replay_all(
    cases: Sequence[Case], shards: Shards, ports: Sequence[int], *, quiet: float = QUIET
) -> list[Outcome]:
    """Replay every case (shard i takes cases i, i+n, ...; one thread per shard); outcomes in case order."""
    outcomes: list[Outcome | None] = [None] * len(cases)
    errors: list[BaseException] = []

    def work(shard: int) -> None:
        backend, port = shards.backends[shard], ports[shard]
        try:
            previous = "none"
            for index in range(shard, len(cases), len(ports)):
                case = cases[index]
                verdict = None
                if case.raw is not None:
                    verdict = replay("127.0.0.1", port, case.raw, backend, timeout=REPLAY_TIMEOUT, quiet=quiet)
                outcome = classify(case, verdict)
                if outcome.verdict == "fail":
                    # rsp reuses backend connections: a failure may be the aftermath of the case before.
                    outcome = Outcome(case, "fail", f"{outcome.detail} [shard {shard}, after: {previous}]")
                outcomes[index] = outcome
                previous = case.ident
        except BaseException as error:  # reported by the caller, never lost in a thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(shard,), daemon=True) for shard in range(len(ports))]
    for thread in threads:
        thread.start()
    bound = REPLAY_TIMEOUT * (len(cases) // len(ports) + 1)
    for thread in threads:
        thread.join(timeout=bound)
    if errors:
        raise errors[0]
    missing = [cases[index].ident for index, outcome in enumerate(outcomes) if outcome is None]
    if missing:
        raise AssertionError(f"{len(missing)} cases were not replayed, first: {missing[0]}")
    return [outcome for outcome in outcomes if outcome is not None]


# -- reporting ------------------------------------------------------------------------------------------

VERDICTS = ("pass", "soft", "fail", "n/a")


def counts(outcomes: Sequence[Outcome]) -> dict[str, dict[str, int]]:
    """row -> verdict -> count: each corpus in order of appearance; desync-guardian's tiers under it
    (rows named "  <tier>")."""
    tally: Counter[tuple[str, str]] = Counter()
    rows: dict[str, None] = {}
    for outcome in outcomes:
        corpus = outcome.case.corpus
        if corpus not in rows:
            rows[corpus] = None
            if corpus == "desync-guardian":
                rows.update(dict.fromkeys(f"  {tier}" for tier in corpora.TIERS))
        tally[(corpus, outcome.verdict)] += 1
        if corpus == "desync-guardian":
            tally[(f"  {outcome.case.label}", outcome.verdict)] += 1
    return {row: {verdict: tally[(row, verdict)] for verdict in VERDICTS} for row in rows}


def summary(outcomes: Sequence[Outcome]) -> str:
    """A plain-text table, then every soft and failed case with what happened."""
    lines = [f"{'corpus':18} {'cases':>5} {'pass':>5} {'soft':>5} {'fail':>5} {'n/a':>5}"]
    for corpus, row in counts(outcomes).items():
        values = [row[verdict] for verdict in VERDICTS]
        lines.append(f"{corpus:18} {sum(values):5} " + " ".join(f"{value:5}" for value in values))
    for outcome in outcomes:
        if outcome.verdict in ("soft", "fail"):
            lines.append(f"  {outcome.verdict.upper():4} {outcome.case.ident}: {outcome.detail}")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def results_markdown(outcomes: Sequence[Outcome]) -> str:
    lines = [
        "# Conformance corpora replayed through rsp (HTTP mode)",
        "",
        "Generated by `python -m tests.conformance.through_rsp` (rules: tests/conformance/through_rsp.py;",
        "the same run is asserted by tests/conformance/test_through_rsp.py). Every case is sent on a fresh",
        "connection to one running rsp; a recording backend re-parses what rsp forwarded with a strict parser.",
        "fail = invalid forwarded HTTP, TE+CL, duplicate Content-Length, more forwarded than answered, a",
        "must-refuse case (desync-guardian Severe, llhttp error) forwarded or answered 2xx, or an undocumented",
        "refusal of a valid case; soft = a documented deliberate difference. Reference points from the issue:",
        "haproxy 2.6 has 8 hard failures on this corpus, nginx 1.22 has 1. A failure names the case replayed",
        "before it through the same listener and backend: rsp reuses backend connections, so a failure can be",
        "the aftermath of that case.",
        "",
        "| corpus | cases | pass | soft | fail | n/a |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total = dict.fromkeys(VERDICTS, 0)
    for name, row in counts(outcomes).items():
        values = [row[verdict] for verdict in VERDICTS]
        if name.startswith(" "):  # a desync-guardian tier, already counted in its corpus
            name = f"&nbsp;&nbsp;{name.strip()}"
        else:
            for verdict in VERDICTS:
                total[verdict] += row[verdict]
        lines.append(f"| {name} | {sum(values)} | " + " | ".join(str(value) for value in values) + " |")
    values = [total[verdict] for verdict in VERDICTS]
    lines.append(f"| **all** | **{sum(values)}** | " + " | ".join(f"**{value}**" for value in values) + " |")
    for verdict, title in (("fail", "Hard failures"), ("soft", "Soft results (documented deliberate differences)")):
        chosen = [o for o in outcomes if o.verdict == verdict]
        lines += ["", f"## {title}: {len(chosen)}", ""]
        lines += [f"- {_md(o.case.ident)} [{_md(o.case.label)}]: {_md(o.detail)}" for o in chosen] or ["None."]
    return "\n".join(lines) + "\n"


def run_standalone(write: Callable[[str], object] | None = None) -> list[Outcome]:
    """Start rsp (tests/support/rsp_process), replay everything, stop rsp; `write(markdown)` if given."""
    from support.rsp_process import RspProcess, free_port

    cases = all_cases()
    with Shards() as shards, tempfile.TemporaryDirectory() as tmp:
        ports = [free_port() for _ in shards.backends]
        path = Path(tmp) / "rsp.lua"
        path.write_text(shards.config(ports))
        proxy = RspProcess(path)
        try:
            proxy.start(len(ports))
            assert sorted(proxy.ports) == sorted(ports), (proxy.ports, ports)
            outcomes = replay_all(cases, shards, ports)
        finally:
            proxy.stop()
    if write is not None:
        write(results_markdown(outcomes))
    return outcomes


def main() -> int:
    outcomes = run_standalone(RESULTS_MD.write_text)
    print(summary(outcomes))
    print(f"\nwrote {RESULTS_MD}")
    return 1 if any(o.verdict == "fail" for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
