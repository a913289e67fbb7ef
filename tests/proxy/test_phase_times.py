"""What the filters see of each try's timing (rsp.proxy.filter_run) on fakes: connect, header and response
times on the session's clock, and timeouts a balancer sets for its try only. The session and its peers are
fakes (support.fake_session); the `make_session` fixture is in conftest.py."""

from __future__ import annotations

import pytest

from rsp.pipeline.phases import ExchangeView, Filter, Verdict
from support.phase_filters import GET_X, Deny, Make


class Times(Filter):
    """log: records the exchange's per-try upstream times."""

    def __init__(self) -> None:
        self.seen: list[tuple[tuple[float, float, float], ...]] = []

    def log(self, exchange: ExchangeView) -> None:
        self.seen.append(exchange.upstream_timings)


def test_each_try_has_its_connect_header_and_response_times_on_the_session_clock(make_session: Make) -> None:
    times = Times()
    s = make_session(backends=2, pool="retries = 1", filters=[times])
    client = s.client()
    client.send(GET_X)
    s.clock.advance(0.25)
    s.fail("connection refused")  # the first try: no connection, no head
    s.clock.advance(0.125)
    backend = s.accept()
    s.clock.advance(0.5)
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe")
    s.clock.advance(1.0)
    backend.send(b"llo")
    assert client.take().endswith(b"hello")
    (first, second), = times.seen
    assert first == (-1.0, -1.0, 0.25)
    assert second == pytest.approx((0.125, 0.625, 1.625))
    local = Times()
    s = make_session(filters=[Deny(), local])
    s.client().send(GET_X)
    assert local.seen == [()]  # answered locally: no try, no value


class Timeouts(Filter):
    """balancer: the first try gets its own connect and read timeouts; later tries set none."""

    def balancer(self, exchange: ExchangeView) -> Verdict:
        if exchange.tries == 0:
            exchange.set_timeouts(0.5, 0.0, 2.0)
        return None


def test_balancer_timeouts_apply_to_their_try_only(make_session: Make) -> None:
    s = make_session(backends=2, pool="retries = 1", http="response_timeout = 30", filters=[Timeouts()])
    client = s.client()
    client.send(GET_X)
    first = s.connector.pending()[0]
    assert first.timeout == 0.5  # the filter's connect timeout for this try
    first.fail("connect timeout")
    second = s.connector.pending()[0]
    assert second.timeout == s.proxy.pools["default"].spec.connect_timeout  # the next try: the pool's
    s.accept()
    s.clock.advance(2.5)
    s.proxy.tick()
    assert client.take() == b""  # the listener's 30 s, not the first try's 2 s
    client2 = s.client()
    client2.send(GET_X)
    s.accept()
    s.clock.advance(2.5)  # the try's own 2 s read timeout passed
    s.proxy.tick()
    assert client2.take().startswith(b"HTTP/1.1 504 ")
