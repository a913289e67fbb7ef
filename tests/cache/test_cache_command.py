"""`rsp cache purge|ban|stats`: on the store file itself, as every worker sees it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rsp.cache.entry import StoredResponse
from rsp.cache.store import CacheStore
from rsp.commands.cache import main, url_key
from rsp.errors import ConfigError


class Store:
    """Opens the store for each look (LMDB allows one open per file per process, and the command opens it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lookup(self, url: bytes) -> list[StoredResponse]:
        store = CacheStore(str(self.path), 4 * 1024 * 1024)
        try:
            return store.lookup(url)
        finally:
            store.close()

    def count(self) -> int:
        store = CacheStore(str(self.path), 4 * 1024 * 1024)
        try:
            return store.count()
        finally:
            store.close()

    def close(self) -> None:
        pass


def setup(tmp_path: Path) -> tuple[Path, Store]:
    config = tmp_path / "rsp.lua"
    store_path = tmp_path / "pages.lmdb"
    config.write_text('listen = { { port = 8080, mode = "http", cache = "pages" } }\n'
                      'backends = { "127.0.0.1:9000" }\n'
                      f'caches = {{ pages = {{ size = "4m", path = "{store_path}" }} }}\n')
    store = CacheStore(str(store_path), 4 * 1024 * 1024)
    for url in (b"http://example.com/a", b"http://example.com/static/x.css", b"http://example.com/static/y.js",
                b"https://example.com/a", b"http://other.example/static/z"):
        store.put(StoredResponse(url, 200, [], b"body", lifetime=60.0))
    store.close()
    return config, Store(store_path)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, int]]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_purge_urls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, store = setup(tmp_path)
    out = run(["-c", str(config), "purge", "http://EXAMPLE.com/a", "http://example.com/none"], capsys)
    assert out == {"pages": {"purged": 1}}
    assert store.lookup(b"http://example.com/a") == [] and store.lookup(b"https://example.com/a")
    store.close()


def test_ban_by_prefix_and_by_regex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, store = setup(tmp_path)
    assert run(["-c", str(config), "ban", "--prefix", "http://example.com/static/"], capsys) == {"pages": {"banned": 2}}
    assert store.lookup(b"http://other.example/static/z")
    assert run(["-c", str(config), "ban", "--regex", r"/a$"], capsys) == {"pages": {"banned": 2}}
    assert store.count() == 1
    store.close()


def test_stats_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, store = setup(tmp_path)
    out = run(["-c", str(config), "stats"], capsys)
    assert out["pages"]["entries"] == 5 and out["pages"]["bytes"] > 0
    with pytest.raises(ConfigError):
        main(["-c", str(config), "stats", "--cache", "nope"])
    with pytest.raises(ConfigError):
        url_key("/relative")
    store.close()


def test_the_subcommand_is_reachable_from_rsp(tmp_path: Path) -> None:
    config, store = setup(tmp_path)
    store.close()
    done = subprocess.run([sys.executable, "-m", "rsp", "cache", "-c", str(config), "stats"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pages"]["entries"] == 5
    bad = subprocess.run([sys.executable, "-m", "rsp", "cache", "-c", str(config), "ban", "--regex", "("],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1 and "bad regex" in bad.stderr


def test_no_store_is_created_by_the_command(tmp_path: Path) -> None:
    config = tmp_path / "rsp.lua"
    config.write_text('listen = { { port = 8080, mode = "http", cache = "pages" } }\n'
                      'backends = { "127.0.0.1:9000" }\n'
                      f'caches = {{ pages = {{ path = "{tmp_path}/never.lmdb" }} }}\n')
    with pytest.raises(ConfigError, match="no store"):
        main(["-c", str(config), "stats"])
    assert not (tmp_path / "never.lmdb").exists()
