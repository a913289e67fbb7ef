"""A pool at run time: its backend records, its balancer, its passive health, resolved addresses.

This is where the siblings meet (DESIGN: the layer above wires them): the balancer does not know about
health, the outlier detector does not know about the balancer; the pool tells the balancer to refresh
when the detector changes a backend's state.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

from rsp.balance.registry import make_balancer
from rsp.config.model import Backend, Pool
from rsp.errors import StartupError
from rsp.health.passive import OutlierDetector
from rsp.logs import get_logger
from rsp.upstream.records import BackendRecord


def resolve_backend(backend: Backend) -> tuple[int, tuple[object, ...]]:
    """Resolve once at start-up, like nginx does for a static upstream."""
    try:
        infos = socket.getaddrinfo(backend.host, backend.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StartupError(f"cannot resolve backend {backend.address}: {exc.strerror}") from exc
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


class PoolRuntime:
    __slots__ = ("addresses", "balancer", "clock", "name", "outliers", "records", "spec", "wants_key")

    def __init__(self, spec: Pool, clock: Callable[[], float]) -> None:
        self.spec = spec
        self.name = spec.name
        self.clock = clock
        self.records: Sequence[BackendRecord] = [BackendRecord(b, i, spec.name) for i, b in enumerate(spec.backends)]
        self.balancer = make_balancer(spec.algorithm, self.records)
        self.addresses = [resolve_backend(b) for b in spec.backends]
        self.wants_key = spec.algorithm == "hash"
        self.outliers = (OutlierDetector(spec.passive_failures, spec.passive_cooldown, clock)
                         if spec.passive_failures > 0 else None)

    def pick(self, key: bytes | None, exclude: Sequence[BackendRecord]) -> BackendRecord | None:
        return self.balancer.pick(key, exclude)

    def connect_failed(self, record: BackendRecord, reason: str) -> None:
        record.last_check = f"traffic: {reason}"
        if self.outliers is not None and self.outliers.record_failure(record):
            get_logger().warning("backend %s %s is DOWN (%d consecutive connection failures on traffic: %s)",
                                 record.spec.label, record.spec.address, self.spec.passive_failures, reason)
            self.balancer.update()

    def connect_succeeded(self, record: BackendRecord) -> None:
        if self.outliers is not None:
            self.outliers.record_success(record)

    def tick(self) -> None:
        """Called about once a second: bring passively ejected backends back after their cool-down."""
        if self.outliers is None:
            return
        back = self.outliers.expire()
        for record in back:
            get_logger().info("backend %s %s is back in rotation after a %.0f s cool-down",
                              record.spec.label, record.spec.address, self.spec.passive_cooldown)
        if back:
            self.balancer.update()

    def set_draining(self, record: BackendRecord, draining: bool) -> None:
        record.draining = draining
        self.balancer.update()

    def find(self, name: str) -> BackendRecord | None:
        for record in self.records:
            if name in (record.spec.name, record.spec.address, str(record.index + 1)):
                return record
        return None
