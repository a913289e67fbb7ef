"""When a failed try is sent again (rsp.proxy.retry_policy), as plain facts in and a verdict out."""

from __future__ import annotations

import pytest

from rsp.proxy.retry_policy import ANSWER, RETRY_FRESH, RETRY_OTHER, next_try


@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"])
def test_an_idempotent_request_without_body_goes_to_another_backend(method: bytes) -> None:
    assert next_try(method, False, True, False, False, True) == RETRY_OTHER


@pytest.mark.parametrize("method", [b"POST", b"PATCH", b"CONNECT"])
def test_a_method_that_is_not_idempotent_is_never_sent_again(method: bytes) -> None:
    # RFC 9110 §9.2.2: only idempotent methods may be repeated without the client's knowledge.
    assert next_try(method, False, True, True, False, True) == ANSWER


def test_a_request_with_a_body_is_not_sent_again_because_its_bytes_are_gone() -> None:
    assert next_try(b"PUT", True, True, True, False, True) == ANSWER


def test_a_response_that_began_or_broke_the_protocol_is_not_retried() -> None:
    # silent=False: a response head arrived, or the backend broke HTTP (RFC 9112 §9.3.1).
    assert next_try(b"GET", False, False, False, False, True) == ANSWER


def test_a_kept_alive_connection_the_backend_closed_is_tried_once_on_a_fresh_one() -> None:
    assert next_try(b"GET", False, True, True, False, False) == RETRY_FRESH
    # The fresh try used, a second stale death goes on as any failure: to another backend if allowed.
    assert next_try(b"GET", False, True, True, True, True) == RETRY_OTHER
    assert next_try(b"GET", False, True, True, True, False) == ANSWER


def test_no_try_is_left_once_the_pool_s_retries_are_used() -> None:
    assert next_try(b"GET", False, True, False, False, False) == ANSWER
