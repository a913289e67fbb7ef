"""The rsp config of the cache's loopback tests: one HTTP listener with a cache in a store file of the test's, two
workers (the store is the machine's), an admin socket; and how many clients those tests run at once."""

from __future__ import annotations

from pathlib import Path

CONNECTIONS = 40  # concurrent clients of the coalescing tests


def config(port: int, backend: int, store: Path, sock: str, size: str = "16m", extra: str = "") -> str:
    return (f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", cache = "pages" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend}" }}\n'
            'http = { access_log = "off" }\n'
            f'caches = {{ pages = {{ size = "{size}", path = "{store}" }} }}\n'
            f'workers = 2\nadmin_socket = "{sock}"\n{extra}')
