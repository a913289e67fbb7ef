"""Parser-level conformance harness: every corpus case through rsp.http1's parsers, judged.

Verdicts: "pass", "soft" (a documented, deliberate difference from the corpus's expectation), "fail"
(a hard failure: the test suite asserts there are none), "n/a" (the case tests a parser API feature that
has no equivalent here, such as llhttp's skipBody callback).

Rules, per corpus:
- desync-guardian. Severe: must be refused. Ambiguous: refused passes; accepted is soft (only GET/HEAD
  with a well-framed body get through, and their normalised forwarding is checked). Compliant and
  Acceptable: accepted passes; refused is soft only when STRICTER lists the case with the reason rsp
  gives, otherwise a failure.
- llhttp. A fixture whose log ends in an error (not a CONNECT/Upgrade pause) must be refused, or at least
  the message in which llhttp failed must never be completed (rsp ignores the bytes after a
  `Connection: close` request instead of failing on them). Fixtures without error must be accepted with
  the same completed messages (method, URL, body; status for responses), unless STRICTER lists them.
  `lenient-*` fixtures test leniency flags rsp does not have: they must be refused or normalised.
  `*-finish` fixtures check end of stream: finish=2 must be refused at EOF, 0 and 1 must not.
- TROPHIES.md: each payload must be refused, or normalised.

"Normalised" is checked the way the proxy would forward: the accepted events are turned back into bytes
by rsp.http1.forward (head rebuilt, bodies re-chunked) and read by the independent `judge` module, which
must find valid HTTP with the same messages. Every case is also fed one byte at a time, and must give the
same events (Data merged) and the same error status as when fed at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from conformance import corpora
from conformance.judge import judge_requests
from rsp.errors import ProtocolError
from rsp.http1 import forward
from rsp.http1.events import Data, EndOfMessage, Event, RequestHead, ResponseHead
from rsp.http1.parser import RequestParser, ResponseParser

# Deliberate differences, part 1: corpus case -> a substring of the ProtocolError message rsp answers
# with. A listed case refused for another reason is a hard failure, and so is an unlisted refusal of a
# case the corpus calls valid.
_TE = "unsupported transfer coding"
_MALFORMED_TE = "malformed Transfer-Encoding"
_TARGET = "invalid method or request-target"
_LINE = "invalid request line"
STRICTER: dict[str, str] = {
    # desync-guardian calls these Compliant or Acceptable. rsp implements no transfer coding but chunked
    # (RFC 9112 §6.1: 501 for a coding the server does not understand), and a transfer-parameter needs
    # a value (RFC 9110 §10.1.4) ...
    "more-compliant-tests.yaml: Correct TE OK": _TE,
    "more-compliant-tests.yaml: Transfer-Encoding: identity and chunked OK": _TE,
    "more-compliant-tests.yaml: Multiple transfer encoding headers in a single request OK": _TE,
    "more-compliant-tests.yaml: TE with custom parameters OK": _MALFORMED_TE,
    "rfc-compliant.yaml: Different Transfer-Encoding headers": _TE,
    "rfc-compliant.yaml: Different Transfer-Encoding headers combined": _TE,
    "rfc-compliant.yaml: Transfer-Encoding with a param: chunked;custom_param": _MALFORMED_TE,
    # ... refuses whitespace before a colon in any field, as RFC 9112 §5.1 says a server MUST ...
    "acceptable.yaml: No TE/CL headers, some others are non-compliant": "whitespace between field name and colon",
    "acceptable.yaml: TE and some others are non-compliant": "whitespace between field name and colon",
    "acceptable.yaml: CL and some others are non-compliant": "whitespace between field name and colon",
    # ... and control bytes in any field name or value (RFC 9110 §5.1, §5.5), not only in framing fields ...
    "acceptable.yaml: A non-essential header with a non-printable character (x01)": "invalid field name",
    "bad-header-characters.yaml: Some-Header\\x01": "invalid field name",
    "bad-header-characters.yaml: \\x01Some-Header": "invalid field name",
    "bad-header-characters.yaml: Some-Header: \\x01value": "invalid byte in field value",
    "bad-header-characters.yaml: Some-Header: value\\x01": "invalid byte in field value",
    # ... takes no fragment, space or byte above 0x7E in a request-target (RFC 9112 §3.2, RFC 3986 §2;
    # HAProxy refuses them too), needs a target at all, and one SP after it (RFC 9112 §3) ...
    "rfc-compliant.yaml: Compliant URL": _TARGET,
    "rfc-compliant.yaml: International in URI": _TARGET,
    "rfc-compliant.yaml: Empty URI": _LINE,
    "uri-specific-test-cases.yaml: Extra spaces in version": _LINE,
    "uri-specific-test-cases.yaml: [space] in URI": _LINE,
    # ... and speaks HTTP/1.0 and HTTP/1.1 only (RFC 9110 §15.6.6: 505).
    "acceptable.yaml: Non-RFC, but OK HTTP/0.9": "HTTP version not supported",
    "acceptable.yaml: Empty version, which means HTTP/0.9": _LINE,
    "acceptable.yaml: Unknown but OK HTTP/1.2": "HTTP version not supported",
    # llhttp accepts these by default. A fragment in the target (never sent, RFC 9112 §3.2) ...
    "request/uri.md: Fragment in URI": _TARGET,
    "request/transfer-encoding.md: POST with `chunked` as last transfer-encoding": _TARGET,
    "request/transfer-encoding.md: POST with `chunked` as last transfer-encoding (multiple headers)": _TARGET,
    # ... userinfo in an http URI (RFC 9110 §4.2.4: recipients SHOULD treat it as an error) ...
    "request/uri.md: `host:port` and basic auth": "userinfo",
    # ... asterisk-form for anything but OPTIONS (RFC 9112 §3.2.4; SSDP and the HTTP/2 preface) ...
    "request/method.md: M-SEARCH request": "asterisk-form",
    "request/method.md: PRI request HTTP2": "asterisk-form",
    # ... other protocols and HTTP/0.9 ...
    "request/method.md: SOURCE request with ICE": _LINE,
    "request/method.md: OPTIONS request with RTSP": _LINE,
    "request/method.md: ANNOUNCE request with RTSP": _LINE,
    "request/sample.md: No HTTP version": _LINE,
    "response/sample.md: RTSP response": "invalid status line",
    "response/sample.md: ICE response": "invalid status line",
    "response/sample.md: HTTP version 0.9": "unsupported HTTP version",
    # ... a CONNECT request with content (RFC 9110 §9.3.6: it has none; llhttp ignores the length) ...
    "request/method.md: CONNECT with body": "CONNECT request has no content",
    # ... and responses whose transfer coding rsp could not re-frame: RFC 9112 §6.3 makes them
    # close-delimited, rsp answers 502 rather than forward a coding it does not implement.
    "response/transfer-encoding.md: `chunked` before other transfer-encoding": "chunked is not the final",
    "response/transfer-encoding.md: multiple transfer-encoding where chunked is not the last one": (
        "chunked is not the final"
    ),
    "response/transfer-encoding.md: `chunkedchunked` transfer-encoding does not enable chunked enconding": _TE,
}

# Deliberate differences, part 2: cases llhttp refuses and rsp accepts, with the reason.
ACCEPTED: dict[str, str] = {
    # llhttp knows a fixed list of methods; RFC 9110 §9.1 makes any token a method (HAProxy and nginx
    # pass unknown ones too). Nothing about framing depends on the method of a request.
    "request/invalid.md: HTTP protocol and ANNOUNCE method": "any token is a method (RFC 9110 §9.1)",
    "request/invalid.md: Invalid method": "any token is a method (RFC 9110 §9.1)",
}


@dataclass(frozen=True)
class Outcome:
    corpus: str
    ident: str
    verdict: str  # "pass" | "soft" | "fail" | "n/a"
    detail: str


@dataclass
class Run:
    events: list[Event]
    error: ProtocolError | None
    at_eof: bool  # the error came from feed(b"")

    @property
    def refused(self) -> bool:
        return self.error is not None

    @property
    def completed(self) -> int:
        return sum(1 for event in self.events if type(event) is EndOfMessage)


def merged(events: Iterable[Event]) -> list[object]:
    """Events with adjacent Data joined: piece boundaries carry no meaning."""
    out: list[object] = []
    for event in events:
        if type(event) is Data and out and isinstance(out[-1], bytes):
            out[-1] += event.data
        elif type(event) is Data:
            out.append(bytes(event.data))
        else:
            out.append(event)
    return out


def feed(raw: bytes, *, response: bool = False, eof: bool = True, step: int = 0) -> Run:
    """Feed `raw` (at once, or `step` bytes at a time) and then EOF; collect events and the error."""
    parser: RequestParser | ResponseParser
    if response:
        parser = ResponseParser()
        for _ in range(16):
            parser.expect(b"GET")
    else:
        parser = RequestParser()
    events: list[Event] = []
    try:
        if step:
            for index in range(0, len(raw), step):
                events += parser.feed(raw[index : index + step])
        else:
            events += parser.feed(raw)
    except ProtocolError as error:
        return Run(events, error, False)
    if eof:
        try:
            events += parser.feed(b"")
        except ProtocolError as error:
            return Run(events, error, True)
    return Run(events, None, False)


def consistent(raw: bytes, whole: Run, *, response: bool = False, eof: bool = True) -> str | None:
    """None when byte-at-a-time feeding gives what whole feeding gave; else what differs."""
    if len(raw) > 64 * 1024:
        return None
    single = feed(raw, response=response, eof=eof, step=1)
    if (whole.error is None) != (single.error is None):
        return f"fed at once: {whole.error!r}; byte by byte: {single.error!r}"
    if whole.error is not None and single.error is not None and whole.error.status != single.error.status:
        return f"status {whole.error.status} at once, {single.error.status} byte by byte"
    if whole.error is None and merged(whole.events) != merged(single.events):
        return "different events when fed byte by byte"
    return None


def normalisation_problem(events: list[Event]) -> str | None:
    """Forward the accepted requests as the proxy would; the judge must read back the same messages."""
    out: list[bytes] = []
    expected: list[tuple[bytes, bytes]] = []
    head: RequestHead | None = None
    body = b""
    for event in events:
        if type(event) is RequestHead:
            head = event
            body = b""
            out.append(forward.request_head(event, "192.0.2.1"))
        elif type(event) is Data and head is not None:
            body += event.data
            out.append(forward.encode_chunk(event.data) if head.body.kind == "chunked" else event.data)
        elif type(event) is EndOfMessage and head is not None:
            if head.body.kind == "chunked":
                out.append(forward.last_chunk(event.trailers))
            expected.append((head.method, body))
            head = None
    judgement = judge_requests(b"".join(out))
    if judgement.problem is not None and not (judgement.incomplete and head is not None):
        return f"forwarded bytes are not clean HTTP: {judgement.problem}"
    got = [(message.method, message.body) for message in judgement.messages]
    if got != expected:
        return f"forwarded messages differ: {got!r} != {expected!r}"
    return None


def _where(run: Run) -> str:
    return " at end of stream" if run.at_eof else ""


def _refusal(ident: str, run: Run) -> tuple[str, str]:
    """Verdict for a case the corpus calls valid but rsp refused."""
    assert run.error is not None
    message = str(run.error)
    reason = STRICTER.get(ident)
    if reason is not None and reason in message:
        return "soft", f"refused by design ({run.error.status} {message})"
    return "fail", f"refused a valid case: {run.error.status} {message}"


def _accepted_check(raw: bytes, run: Run, *, response: bool = False, eof: bool = True) -> str | None:
    problem = consistent(raw, run, response=response, eof=eof)
    if problem is None and not response:
        problem = normalisation_problem(run.events)
    return problem


# -- desync-guardian ------------------------------------------------------------------------------------


def judge_desync(case: corpora.DesyncCase) -> Outcome:
    run = feed(case.raw, eof=False)
    problem = consistent(case.raw, run, eof=False)
    if problem is not None:
        return Outcome("desync-guardian", case.ident, "fail", problem)
    accepted = not run.refused and any(type(event) is RequestHead for event in run.events)
    if case.tier == "Severe":
        if accepted:
            return Outcome("desync-guardian", case.ident, "fail", "accepted a Severe case")
        return Outcome("desync-guardian", case.ident, "pass", f"refused: {run.error}")
    if accepted:
        problem = normalisation_problem(run.events)
        if problem is not None:
            return Outcome("desync-guardian", case.ident, "fail", problem)
        if case.tier == "Ambiguous":
            return Outcome("desync-guardian", case.ident, "soft", "accepted; forwarded normalised")
        return Outcome("desync-guardian", case.ident, "pass", "accepted")
    if case.tier == "Ambiguous":
        return Outcome("desync-guardian", case.ident, "pass", f"refused: {run.error}")
    if run.error is None:
        return Outcome("desync-guardian", case.ident, "fail", "no event and no error")
    verdict, detail = _refusal(case.ident, run)
    return Outcome("desync-guardian", case.ident, verdict, detail)


# -- llhttp ---------------------------------------------------------------------------------------------


def _compare_messages(case: corpora.LlhttpCase, events: list[Event]) -> str | None:
    ours: list[dict[str, object]] = []
    for event in merged(events):
        if isinstance(event, RequestHead):
            ours.append({"method": event.method.decode("latin-1"), "url": event.target.decode("latin-1"), "body": b""})
        elif isinstance(event, ResponseHead):
            ours.append({"status": event.status, "body": b""})
        elif isinstance(event, bytes) and ours:
            ours[-1]["body"] = event
    for index, expected in enumerate(m for m in case.messages if m.complete):
        if index >= len(ours):
            return f"message {index + 1} missing"
        got = ours[index]
        if "method" in got and (got["method"], got["url"]) != (expected.method, expected.url):
            return f"message {index + 1}: {got['method']} {got['url']} != {expected.method} {expected.url}"
        if "status" in got and got["status"] != expected.status:
            return f"message {index + 1}: status {got['status']} != {expected.status}"
        body = got["body"]
        assert isinstance(body, bytes)
        if body.decode("utf-8", "replace") != expected.body:
            return f"message {index + 1}: body {body!r} != {expected.body!r}"
    return None


def judge_llhttp(case: corpora.LlhttpCase) -> Outcome:
    corpus = "llhttp/" + case.file.split("/")[0]
    response = case.file.startswith("response/")
    raw = case.raw if response else corpora.with_host(case.raw)
    if case.meta.get("skipBody"):
        return Outcome(corpus, case.ident, "n/a", "tests llhttp's skip-body callback result")
    finish = case.kind.endswith("-finish")
    # Cases that must be refused get an end of stream after their bytes: a message left incomplete is
    # refused then (the proxy answers and closes), never forwarded whole.
    eof = finish or case.lenient or case.error_code is not None
    run = feed(raw, response=response, eof=eof)
    problem = consistent(raw, run, response=response, eof=eof)
    if problem is not None:
        return Outcome(corpus, case.ident, "fail", problem)

    if finish:
        if case.finish == 2:
            verdict = "pass" if run.refused else "fail"
            return Outcome(corpus, case.ident, verdict, f"end of stream mid-message: {run.error}")
        if run.refused:
            return Outcome(corpus, case.ident, *_refusal(case.ident, run))
        return Outcome(corpus, case.ident, "pass", "clean end of stream")

    if case.lenient:
        if run.refused:
            return Outcome(corpus, case.ident, "pass", f"refused{_where(run)}: {run.error}")
        problem = None if response else normalisation_problem(run.events)
        if problem is not None:
            return Outcome(corpus, case.ident, "fail", f"accepted a lenient case: {problem}")
        return Outcome(corpus, case.ident, "pass", "accepted and normalised")

    if case.error_code is not None:
        if run.refused:
            return Outcome(corpus, case.ident, "pass", f"refused{_where(run)}: {run.error}")
        if run.completed <= case.completed:
            return Outcome(corpus, case.ident, "pass", "the failing message is never completed")
        reason = ACCEPTED.get(case.ident)
        if reason is not None:
            return Outcome(corpus, case.ident, "soft", f"accepted by design: {reason} (llhttp: {case.error_reason})")
        return Outcome(corpus, case.ident, "fail", f"accepted what llhttp refuses: {case.error_reason}")

    if run.refused:
        return Outcome(corpus, case.ident, *_refusal(case.ident, run))
    problem = _compare_messages(case, run.events)
    if problem is None and not response:
        problem = normalisation_problem(run.events)
    if problem is not None:
        return Outcome(corpus, case.ident, "fail", problem)
    if run.completed != case.completed:
        return Outcome(corpus, case.ident, "fail", f"{run.completed} messages completed, llhttp {case.completed}")
    return Outcome(corpus, case.ident, "pass", "accepted, same messages")


# -- TROPHIES.md ----------------------------------------------------------------------------------------


def judge_trophy(trophy: corpora.Trophy) -> Outcome:
    if trophy.payload is None:
        return Outcome("http-garden", trophy.ident, "n/a", "the payload is prose, not bytes")
    run = feed(trophy.payload)
    problem = consistent(trophy.payload, run)
    if problem is not None:
        return Outcome("http-garden", trophy.ident, "fail", problem)
    if run.refused:
        return Outcome("http-garden", trophy.ident, "pass", f"refused{_where(run)}: {run.error}")
    problem = normalisation_problem(run.events)
    if problem is not None:
        return Outcome("http-garden", trophy.ident, "fail", problem)
    return Outcome("http-garden", trophy.ident, "pass", f"normalised ({run.completed} messages)")


# -- all of it ------------------------------------------------------------------------------------------


def run_all() -> list[Outcome]:
    outcomes = [judge_desync(case) for case in corpora.load_desync_guardian()]
    outcomes += [judge_llhttp(case) for case in corpora.load_llhttp("request")]
    outcomes += [judge_llhttp(case) for case in corpora.load_llhttp("response")]
    outcomes += [judge_trophy(trophy) for trophy in corpora.load_trophies()]
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    counts: Counter[tuple[str, str]] = Counter((o.corpus, o.verdict) for o in outcomes)
    lines = [f"{'corpus':18} {'cases':>5} {'pass':>5} {'soft':>5} {'fail':>5} {'n/a':>5}"]
    for corpus in dict.fromkeys(o.corpus for o in outcomes):
        row = [counts[(corpus, verdict)] for verdict in ("pass", "soft", "fail", "n/a")]
        lines.append(f"{corpus:18} {sum(row):5} {row[0]:5} {row[1]:5} {row[2]:5} {row[3]:5}")
    for outcome in outcomes:
        if outcome.verdict in ("soft", "fail"):
            lines.append(f"  {outcome.verdict.upper():4} {outcome.ident}: {outcome.detail}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(run_all()))
