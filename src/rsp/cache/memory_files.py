"""The files of memory-backed caches (no `path`), and their removal when rsp stops.

A memory-backed store is a file in /dev/shm: RAM that nothing frees but its removal. Every worker of one rsp,
their restarts and its reloads share it; when the master stops cleanly it removes the files of every
memory-backed cache it ran (over all its reloads), as nginx's `keys_zone` and Varnish's `malloc` storage
are gone when they stop. A store with `path` is the operator's file and is kept. A master that dies without
stopping leaves its files, and the next start of the same config opens them again.

No lmdb here: the master imports this whatever its config.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from typing import Final

from rsp.config.model import Config

SHM_DIR: Final = "/dev/shm"
# Beside a store: LMDB's lock file and rsp's spool directory (rsp.cache.spool.spool_dir); every module names
# them through these.
LOCK_SUFFIX: Final = "-lock"
SPOOL_SUFFIX: Final = "-spool"


def default_path(config_path: str, name: str) -> str:
    """The file of cache `name` without `path`: in /dev/shm (else the temporary directory), named after the
    user, the config file and the cache."""
    base = SHM_DIR if os.path.isdir(SHM_DIR) and os.access(SHM_DIR, os.W_OK) else tempfile.gettempdir()
    tag = hashlib.sha256(os.path.abspath(config_path).encode()).hexdigest()[:12]
    return os.path.join(base, f"rsp-cache-{os.getuid()}-{tag}-{name}.lmdb")


def memory_backed_paths(config: Config) -> set[str]:
    """The store files of `config`'s memory-backed caches."""
    return {default_path(config.path, name) for name, settings in config.caches.items() if not settings.path}


def remove_store_files(path: str) -> None:
    """Remove a store, its lock file and its spool directory (what is already gone is skipped)."""
    for name in (path, path + LOCK_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
    shutil.rmtree(path + SPOOL_SUFFIX, ignore_errors=True)
