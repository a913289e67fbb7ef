"""Which event loop rsp runs on (rsp.transport.event_loop.choose_loop), for every branch: a pure function of
the platform's facts and RSP_LOOP, so each case is a value, not a machine."""

from __future__ import annotations

import asyncio
import sys

import pytest

from rsp.errors import ConfigError, StartupError
from rsp.transport.event_loop import (
    SUPPORTED_VERSIONS,
    LoopChoice,
    Platform,
    RspEventLoop,
    choose_loop,
    loop_from_environment,
)

SUPPORTED = SUPPORTED_VERSIONS[0]
NEWER = (3, 12)


def platform(implementation: str = "cpython", version: tuple[int, int] = SUPPORTED, *, epoll: bool = True,
             uvloop: bool = True) -> Platform:
    return Platform(implementation=implementation, version=version, has_epoll=epoll, has_uvloop=uvloop)


def test_supported_cpython_with_epoll_runs_rsps_own_loop() -> None:
    assert choose_loop("", platform()) == LoopChoice("rsp", "")
    assert choose_loop("rsp", platform()) == LoopChoice("rsp", "")


def test_another_cpython_version_falls_back_to_uvloop_and_says_why() -> None:
    assert NEWER not in SUPPORTED_VERSIONS
    choice = choose_loop("", platform(version=NEWER))
    assert choice == LoopChoice(
        "uvloop", "rsp's event loop supports CPython 3.11 only; running on CPython 3.12: using uvloop")


def test_another_version_without_uvloop_falls_back_to_asyncio() -> None:
    choice = choose_loop("", platform(version=NEWER, uvloop=False))
    assert choice.kind == "asyncio"
    assert choice.reason.endswith("running on CPython 3.12: using asyncio")


def test_another_implementation_falls_back_even_at_a_supported_version_number() -> None:
    choice = choose_loop("", platform("pypy"))
    assert choice.kind == "uvloop"
    assert "running on PyPy 3.11" in choice.reason


def test_no_epoll_falls_back() -> None:
    assert choose_loop("", platform(epoll=False)) == LoopChoice(
        "uvloop", "rsp's event loop needs epoll (Linux), which this system lacks: using uvloop")
    assert choose_loop("", platform(epoll=False, uvloop=False)).kind == "asyncio"


def test_asking_for_rsps_loop_where_it_cannot_run_falls_back_too() -> None:
    choice = choose_loop("rsp", platform(version=NEWER))
    assert choice.kind == "uvloop" and "3.12" in choice.reason


@pytest.mark.parametrize("where", [platform(), platform(version=NEWER), platform("pypy", epoll=False)])
def test_rsp_loop_set_to_another_loop_is_obeyed_without_comment(where: Platform) -> None:
    assert choose_loop("uvloop", where) == LoopChoice("uvloop", "")
    assert choose_loop("asyncio", where) == LoopChoice("asyncio", "")


def test_rsp_loop_uvloop_without_uvloop_is_an_error() -> None:
    with pytest.raises(ConfigError, match="RSP_LOOP=uvloop: uvloop is not installed"):
        choose_loop("uvloop", platform(uvloop=False))


def test_an_unknown_rsp_loop_is_an_error() -> None:
    with pytest.raises(ConfigError, match="RSP_LOOP='tokio': expected one of rsp, uvloop, asyncio"):
        choose_loop("tokio", platform())


@pytest.mark.parametrize(("requested", "expected"), [("", RspEventLoop), ("asyncio", asyncio.SelectorEventLoop)])
def test_the_environment_picks_the_loop_that_is_built(monkeypatch: pytest.MonkeyPatch, requested: str,
                                                      expected: type) -> None:
    """This test runs on a supported CPython with epoll (the suite's platform): the default is rsp's loop."""
    monkeypatch.setenv("RSP_LOOP", requested)
    loop, choice = loop_from_environment()
    try:
        assert type(loop) is expected
        assert choice.reason == ""
    finally:
        loop.close()


def test_rsps_loop_refuses_to_be_built_on_a_version_it_was_not_written_for(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(sys, "version_info", (*NEWER, 0, "final", 0))
        with pytest.raises(StartupError, match=r"supports CPython 3\.11 only; running on CPython 3\.12"):
            RspEventLoop()
