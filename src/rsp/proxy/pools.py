"""A pool at run time: its backend records, its balancer, its passive health, resolved addresses.

This is where the siblings meet (docs/architecture.md: the layer above wires them): the balancer does
not know about health, the outlier detector does not know about the balancer; the pool tells the
balancer to refresh when the detector changes a backend's state.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Sequence

from rsp.balance.registry import make_balancer
from rsp.config.model import Backend, Pool, PoolTls
from rsp.errors import StartupError
from rsp.health.checker import CheckTls
from rsp.health.passive import OutlierDetector
from rsp.logs import get_logger
from rsp.metrics.counters import PoolStats
from rsp.tls.client_context import backend_server_name
from rsp.upstream.records import BackendRecord, records_for


def resolve_backend(backend: Backend) -> tuple[int, tuple[object, ...]]:
    """Resolve once at start-up, like nginx does for a static upstream."""
    try:
        infos = socket.getaddrinfo(backend.host, backend.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StartupError(f"cannot resolve backend {backend.address}: {exc.strerror}") from exc
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


class BackendTls:
    """How a pool speaks TLS to its backends: one client context, and the name each backend is sent (SNI) and
    checked against, derived from the backend itself, so a backend added at run time, an app that joins or a
    Redis-supplied pool built from a TLS template gets its name like a configured one."""

    __slots__ = ("context", "names", "spec")

    def __init__(self, context: ssl.SSLContext, spec: PoolTls) -> None:
        self.context = context
        self.spec = spec
        self.names: dict[Backend, str] = {}  # memo: the name needs an address parse

    def name_for(self, backend: Backend) -> str:
        name = self.names.get(backend)
        if name is None:
            name = self.names[backend] = backend_server_name(self.spec, backend)
        return name


def check_tls(pool: PoolRuntime) -> CheckTls | None:
    """How the active checks of `pool` speak TLS: as its traffic does (None: clear text)."""
    return (pool.tls.context, pool.tls.name_for) if pool.tls is not None else None


class PoolRuntime:
    __slots__ = ("addresses", "balancer", "clock", "name", "on_backends_changed", "on_eject", "outliers", "records",
                 "spec", "stats", "tls", "wants_key")

    def __init__(self, spec: Pool, clock: Callable[[], float], tls: BackendTls | None = None) -> None:
        """`tls`: how to reach the backends over TLS (None: clear text); built from the config by
        rsp.tls_wiring, shared by the pools built from the same settings."""
        self.spec = spec
        self.tls = tls
        self.name = spec.name
        self.clock = clock
        self.records = records_for(spec)
        self.balancer = make_balancer(spec.algorithm, self.records)
        self.addresses = [resolve_backend(b) for b in spec.backends]
        self.wants_key = spec.algorithm == "hash"
        self.stats = PoolStats()
        # With active checks configured, only they bring an ejected backend back (restore=False).
        self.outliers = (OutlierDetector(spec.passive_failures, spec.passive_cooldown, clock,
                                         restore=spec.health.kind == "none")
                         if spec.passive_failures > 0 else None)
        # Set by the server: a backend added or removed at run time (the HTTP proxy keeps an idle pool per
        # backend), and a passive ejection decided here (a worker reports it to the master, which tells
        # the other workers: rsp.master).
        self.on_backends_changed: Callable[[BackendRecord, bool], None] | None = None
        self.on_eject: Callable[[BackendRecord], None] | None = None

    def pick(self, key: bytes | None, exclude: Sequence[BackendRecord]) -> BackendRecord | None:
        record = self.balancer.pick(key, exclude)
        if record is None and self._panic_restore():
            record = self.balancer.pick(key, exclude)
        return record

    def _panic_restore(self) -> bool:
        """Nothing can be picked, but some backends are out only because traffic failed on them (no active
        check says they are down). Passive ejection is a guess, so try them again rather than refuse every
        client until the cool-down ends: Envoy's panic threshold, and nginx's single-server rule, in spirit."""
        outliers = self.outliers
        if outliers is None or not outliers.restore:
            return False
        ejected = [r for r in self.records if not r.up and outliers.ejected_until(r) is not None]
        if not ejected:
            return False
        for record in ejected:
            record.up = True
        outliers.expire()  # forgets the ejections undone here
        self.balancer.update()
        get_logger().warning("pool %s: every usable backend was passively ejected; trying them again", self.name)
        return True

    def traffic_failed(self, record: BackendRecord, reason: str) -> None:
        """Real traffic failed on `record` (connect refused or timed out; in HTTP mode also a broken or late
        response): counts toward passive ejection."""
        if self.outliers is None:
            record.failures += 1  # otherwise the detector counts it
        elif self.outliers.record_failure(record):
            record.stats.ejections += 1
            get_logger().warning("backend %s is DOWN (%d consecutive failures on traffic: %s)",
                                 record.label, self.spec.passive_failures, reason)
            self.balancer.update()
            if self.on_eject is not None:
                self.on_eject(record)

    def eject(self, record: BackendRecord) -> None:
        """Another process ejected `record` on its traffic: take it out here too, for the same cool-down."""
        if self.outliers is None or not record.up:
            return
        self.outliers.eject(record)
        get_logger().info("backend %s is DOWN here too (passively ejected by another worker)", record.label)
        self.balancer.update()

    def traffic_ok(self, record: BackendRecord) -> None:
        if self.outliers is not None:
            self.outliers.record_success(record)

    def tick(self) -> None:
        """Called about once a second: bring passively ejected backends back after their cool-down."""
        if self.outliers is None:
            return
        back = self.outliers.expire()
        for record in back:
            get_logger().info("backend %s is back in rotation after a %.0f s cool-down",
                              record.label, self.spec.passive_cooldown)
        if back:
            self.balancer.update()

    def health_changed(self, record: BackendRecord, transition: object) -> None:
        """The active checker changed `record.up` (and logged it): refresh the balancer."""
        self.balancer.update()

    def set_draining(self, record: BackendRecord, draining: bool) -> None:
        record.draining = draining
        self.balancer.update()

    def set_weight(self, record: BackendRecord, weight: int) -> None:
        record.weight = weight
        self.balancer.update()

    # -- membership at run time: the runtime API's `add backend`/`remove backend`, the master's backend state,
    # an app of the sandbox joining when ready and leaving when it dies ----------------------------------
    def add_backend(self, backend: Backend) -> BackendRecord:
        """A new backend, up, in rotation now. Its index is new and never reused, so `addresses[record.index]`
        of a connection to a removed backend stays valid while it lives."""
        record = BackendRecord(backend, len(self.addresses), self.name)
        self.addresses.append(resolve_backend(backend))
        self.rejoin(record)
        return record

    def rejoin(self, record: BackendRecord) -> None:
        """Put back a record this pool made (an app restarted at the same address): the same record, so
        whatever is keyed by it (an HTTP listener's idle pool) is reused, not grown."""
        record.up = True
        record.failures = 0
        self.records = (*self.records, record)
        self.balancer = make_balancer(self.spec.algorithm, self.records)
        if self.on_backends_changed is not None:
            self.on_backends_changed(record, True)

    def remove_backend(self, record: BackendRecord, *, allow_empty: bool = False) -> None:
        """Out of rotation now; its live connections finish on their own. An operator's removal must leave
        a backend (allow_empty=False); an app's pool is empty while the app is down."""
        remaining = tuple(r for r in self.records if r is not record)
        if not remaining and not allow_empty:
            raise ValueError(f"pool {self.name} would have no backend left")
        self.records = remaining
        self.balancer = make_balancer(self.spec.algorithm, self.records)
        if self.on_backends_changed is not None:
            self.on_backends_changed(record, False)

    def find(self, name: str) -> BackendRecord | None:
        """By name, by address, or by 1-based position."""
        for record in self.records:
            if name in (record.name, record.spec.address, str(record.index + 1)):
                return record
        return None
