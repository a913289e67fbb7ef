"""Fixtures of the rsp.certs tests: the 2015 hierarchy, built once per session (key generation is the slow part).

Shared values and types live in cert_story.py and cert_pki.py (imported by name; a module called conftest
would clash with tests/conftest.py).
"""

from __future__ import annotations

import pytest
from cert_story import Story, build_story


@pytest.fixture(scope="session")
def story() -> Story:
    return build_story()
