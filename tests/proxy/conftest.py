from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.fake_session import FakeSession


@pytest.fixture
def make_session() -> Iterator[Callable[..., FakeSession]]:
    """FakeSession(**kwargs), closed at teardown."""
    made: list[FakeSession] = []

    def make(**kwargs: Any) -> FakeSession:
        session = FakeSession(**kwargs)
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()
