"""Filters that hold an exchange (rsp.proxy.filter_run) on fakes: SUSPEND in rewrite, access or balancer,
then resume or answer later (the request body buffered meanwhile; a client that left is not resumed), and a
filter that reads the whole request body before it lets the exchange go on (replace, record, discard it,
or a body over the buffer). The session and its peers are fakes (support.fake_session); the `make_session`
fixture is in conftest.py."""

from __future__ import annotations

from rsp.pipeline.messages import LocalReply
from rsp.pipeline.phases import SUSPEND, ExchangeView, Filter, Verdict
from support.phase_filters import GET_X, OK_5, Make, Recorder


class Later(Filter):
    """Suspends in `phase`; the test resumes or answers it later."""

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.waiting: list[ExchangeView] = []

    def _maybe(self, phase: str, exchange: ExchangeView) -> Verdict:
        if phase != self.phase:
            return None
        self.waiting.append(exchange)
        return SUSPEND

    def rewrite(self, exchange: ExchangeView) -> Verdict:
        return self._maybe("rewrite", exchange)

    def access(self, exchange: ExchangeView) -> Verdict:
        return self._maybe("access", exchange)

    def balancer(self, exchange: ExchangeView) -> Verdict:
        return self._maybe("balancer", exchange)


def test_suspend_then_resume_from_a_later_loop_turn_with_the_body_buffered_meanwhile(make_session: Make) -> None:
    for phase in ("rewrite", "access", "balancer"):
        later = Later(phase)
        recorder = Recorder()
        s = make_session(filters=[later, recorder])
        client = s.client()
        client.send(b"POST /up HTTP/1.1\r\nHost: example\r\nContent-Length: 4\r\n\r\nab")
        assert later.waiting and not s.connector.attempts  # the exchange waits, nothing blocks
        client.send(b"cd")  # the body is kept as while connecting
        s.turns.call_soon(later.waiting[0].resume)
        s.turns.run()
        backend = s.accept()
        assert backend.take().endswith(b"\r\n\r\nabcd")
        backend.send(OK_5)
        assert client.take().endswith(b"hello")
        assert recorder.phases()[-1] == "log"


def test_suspend_then_answer_after_fake_time_passed(make_session: Make) -> None:
    later = Later("rewrite")
    s = make_session(filters=[later])
    client = s.client()
    client.send(GET_X)
    s.clock.advance(2.0)  # a timer of the filter's, on the fake clock
    later.waiting[0].answer(LocalReply(302, [(b"Location", b"/elsewhere")]))
    assert client.take() == b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\ncontent-length: 0\r\n\r\n"
    assert not s.connector.attempts
    later.waiting[0].resume()  # too late: ignored
    assert not s.connector.attempts


def test_a_suspended_exchange_whose_client_left_is_not_resumed(make_session: Make) -> None:
    later = Later("access")
    s = make_session(filters=[later])
    client = s.client()
    client.send(GET_X)
    client.reset()
    later.waiting[0].resume()
    assert not s.connector.attempts


class BodyReader(Filter):
    """access: waits for the whole body, then replaces it (upper-cased), discards it, or only records it."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.seen: list[bytes | None] = []
        self.waiting: list[ExchangeView] = []

    def access(self, exchange: ExchangeView) -> Verdict:
        if not exchange.read_body(lambda: self._done(exchange)):
            self.waiting.append(exchange)
            return SUSPEND
        self._act(exchange)
        return None

    def _done(self, exchange: ExchangeView) -> None:
        self._act(exchange)
        exchange.resume()

    def _act(self, exchange: ExchangeView) -> None:
        data = exchange.body_data()
        self.seen.append(data)
        if self.mode == "upper" and data is not None:
            exchange.set_body(data.upper() + b"!")
        elif self.mode == "discard":
            exchange.discard_body()


def test_a_filter_reads_the_whole_body_then_replaces_it_with_its_new_length(make_session: Make) -> None:
    reader = BodyReader("upper")
    s = make_session(filters=[reader])
    client = s.client()
    client.send(b"POST /up HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n")
    assert reader.waiting and not s.connector.attempts  # waits for the rest of the body
    client.send(b"3\r\ncde\r\n0\r\n\r\n")
    assert reader.seen == [b"abcde"]
    forwarded = s.accept().take()
    head, _, body = forwarded.partition(b"\r\n\r\n")
    assert b"content-length: 6" in head.lower() and b"chunked" not in head.lower()
    assert body == b"ABCDE!"


def test_a_body_read_as_it_came_is_forwarded_unchanged_chunked(make_session: Make) -> None:
    reader = BodyReader("read")
    s = make_session(filters=[reader])
    client = s.client()
    client.send(b"POST /up HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n")
    assert reader.seen == [b"ab"]
    forwarded = s.accept().take()
    assert b"\r\nTransfer-Encoding: chunked\r\n" in forwarded
    assert forwarded.endswith(b"\r\n\r\n2\r\nab\r\n0\r\n\r\n")


def test_a_discarded_body_is_not_forwarded_and_its_rest_is_dropped(make_session: Make) -> None:
    reader = BodyReader("discard")
    s = make_session(filters=[reader])
    client = s.client()
    client.send(b"POST /up HTTP/1.1\r\nHost: example\r\nContent-Length: 4\r\n\r\nab")
    assert reader.waiting
    reader.mode = "discard"
    client.send(b"cd")
    backend = s.accept()
    forwarded = backend.take()
    assert b"Content-Length: 0\r\n" in forwarded  # the client's field, spelt as it came, now 0
    assert not forwarded.endswith(b"abcd") and b"\r\n\r\nab" not in forwarded
    backend.send(OK_5)
    assert client.take().endswith(b"hello")


def test_a_body_over_the_buffer_pauses_the_client_reads_as_none_and_streams_on(make_session: Make) -> None:
    from rsp.pipeline.request_body import REQUEST_BODY_BUFFER_SIZE
    reader = BodyReader("read")
    s = make_session(filters=[reader])
    client = s.client()
    size = REQUEST_BODY_BUFFER_SIZE + 10
    client.send(b"POST /up HTTP/1.1\r\nHost: example\r\nContent-Length: %d\r\n\r\n" % (size + 5))
    client.send(b"x" * size)
    assert reader.seen == [None]  # over the buffer: nil, as OpenResty's body in a file
    assert not client.reading  # the client waits until the backend takes the held part
    backend = s.accept()
    assert client.reading
    client.send(b"yyyyy")
    forwarded = backend.take()
    assert forwarded.endswith(b"x" * size + b"yyyyy")
