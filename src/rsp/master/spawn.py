"""Start a worker process: `python -m rsp worker` with the listening sockets, its control socket and the
config inherited as descriptors.

Why fork+exec (posix_spawn) and not a bare fork of the master: the master runs an event loop with signal
handlers (a wakeup fd), pidfds, health-check tasks, the admin socket and other workers' channels. A forked
child would inherit all of it, half-alive, and would have to undo each piece before it could run a loop of
its own; a missed one (the wakeup fd) wakes the master for the child's signals. An exec'd worker starts
clean and holds exactly the descriptors it is given. What the worker costs for it is the interpreter start
(a few hundred milliseconds, once per worker, while the old workers keep serving).

The config is handed over as the master validated it: pickled into a memfd (`os.memfd_create`), so a file
edited between the master's validation and the worker's start cannot change what the worker runs. With it go
the master's validations of the TLS certificates (rsp.tls.server_context.validated_for), keyed by the
contents of the files, so that a worker does not validate again what the master's check validated (1,000
certificates: ~0.6 s per worker) and still validates a file changed since.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from rsp.config.model import Config
from rsp.errors import StartupError
from rsp.tls.server_context import ValidatedCertificates

# The environment variable that carries the worker's descriptor numbers (a JSON object).
WORKER_ENV: Final = "RSP_WORKER"


@dataclass(frozen=True, slots=True)
class WorkerFds:
    """The descriptors a worker finds open, by number, and its name."""

    name: str
    config: int
    control: int
    listen: tuple[int, ...]

    def to_env(self) -> str:
        return json.dumps({"name": self.name, "config": self.config, "control": self.control,
                           "listen": list(self.listen)})

    @staticmethod
    def from_env(text: str) -> WorkerFds:
        try:
            doc = json.loads(text)
            return WorkerFds(str(doc["name"]), int(doc["config"]), int(doc["control"]),
                             tuple(int(fd) for fd in doc["listen"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StartupError(f"{WORKER_ENV} is not what rsp's master sets: {exc}") from None


@dataclass(frozen=True, slots=True)
class WorkerStart:
    """What the memfd holds: the generation's config and the master's validations of its certificates."""

    config: Config
    tls_validated: ValidatedCertificates


def config_memfd(config: Config, tls_validated: ValidatedCertificates | None = None) -> int:
    """A sealed-by-convention memfd holding the pickled WorkerStart (close-on-exec: spawn passes it explicitly)."""
    fd = os.memfd_create("rsp-config", os.MFD_CLOEXEC)
    data = pickle.dumps(WorkerStart(config, tls_validated or {}), protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return fd


def read_start(fd: int) -> WorkerStart:
    """The worker's side: read the whole memfd from offset 0 (pread: the offset is shared with the master)."""
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    start = pickle.loads(b"".join(chunks))
    if isinstance(start, Config):  # a master started before the validations went along (an upgrade on disk)
        return WorkerStart(start, {})
    if not isinstance(start, WorkerStart) or not isinstance(start.config, Config):
        raise StartupError("the config descriptor does not hold a config")
    return start


def spawn_worker(name: str, config_fd: int, listen_fds: Sequence[int], control_fd: int) -> int:
    """Start `python -m rsp worker` with the given descriptors; returns its pid. The worker stays in the
    master's process group and session (a terminal's Ctrl-C and a test's group kill reach it)."""
    sources = [config_fd, control_fd, *listen_fds]
    # Targets above every source, so that no dup2 overwrites a source a later one still needs; dup2 to a new
    # number also clears close-on-exec on the copy.
    base = max(sources) + 1
    targets = list(range(base, base + len(sources)))
    fds = WorkerFds(name, targets[0], targets[1], tuple(targets[2:]))
    env = dict(os.environ)
    env[WORKER_ENV] = fds.to_env()
    actions = [(os.POSIX_SPAWN_DUP2, source, target) for source, target in zip(sources, targets, strict=True)]
    try:
        return os.posix_spawn(sys.executable, [sys.executable, "-m", "rsp", "worker"], env, file_actions=actions)
    except OSError as exc:
        raise StartupError(f"cannot start worker {name}: {exc.strerror or exc}") from exc
