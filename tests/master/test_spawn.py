"""The config handed to a worker through a memfd comes back equal; the worker's descriptor list round-trips."""

from __future__ import annotations

import os
import pickle

from rsp.config.lua_loader import parse_config
from rsp.master.spawn import WorkerFds, config_memfd, read_start

SOURCE = """
workers = 2
listen = { { address = "127.0.0.1", port = 8080, mode = "http", pool = "web" } }
pools = { web = { backends = { "127.0.0.1:9000", { address = "127.0.0.1:9001", weight = 3, name = "b" } },
                  health = { kind = "http", path = "/health" } } }
routes = { { host = "*.example.com", methods = { "GET" }, pool = "web" } }
http = { trusted_proxies = { "10.0.0.0/8" } }
timeouts = { reload_grace = 7 }
"""


def test_config_round_trips_through_a_memfd() -> None:
    config = parse_config(SOURCE, "rsp.lua")
    fd = config_memfd(config)
    try:
        os.read(fd, 3)  # a shared offset moved by someone else does not matter: the worker preads from 0
        assert read_start(fd).config == config
    finally:
        os.close(fd)


def test_a_bare_config_from_an_older_master_still_reads() -> None:
    """rsp upgraded on disk under a running master: the new worker reads the config alone, validates itself."""
    config = parse_config(SOURCE, "rsp.lua")
    fd = os.memfd_create("rsp-config-old")
    try:
        os.write(fd, pickle.dumps(config))
        start = read_start(fd)
        assert start.config == config and start.tls_validated == {}
    finally:
        os.close(fd)


def test_worker_fds_round_trip() -> None:
    fds = WorkerFds("worker 3.1", 10, 11, (12, 13))
    assert WorkerFds.from_env(fds.to_env()) == fds
