"""Memory per idle keep-alive connection: RSS growth per connection, and what rsp's share is made of.

    .venv/bin/python bench/idle_memory.py                       # rsp and HAProxy: RSS growth per idle connection
    .venv/bin/python bench/idle_memory.py --objects             # rsp in-process: Python objects per connection, by type

Each connection sends one small keep-alive request, reads the response, then stays open and idle. RSS is
the sum of VmRSS over the proxy's process tree (`workers = 1`: one process; HAProxy `nbthread 1`), read
after `--conns` connections and after twice as many, so start-up pages cancel out.

`--objects` starts rsp (workers = 1) with a thread in its worker process (a sitecustomize module) that, on request,
starts tracemalloc (at the first request: after start-up and a warm-up of 100 connections), runs
gc.collect() and reports every gc-tracked object by type (count, sys.getsizeof) plus tracemalloc's
traced bytes and its top allocation sites; the difference between two snapshots, divided by the connections
opened between them, is what one idle connection holds. Objects the GC does not track (bytes, str, ints) show
only in tracemalloc's total. Only 127.0.0.1 is used; every process started is stopped by pid.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs
import lib
import procstat

ROOT = Path(__file__).resolve().parent.parent
REQUEST = f"GET {configs.SMALL_PATH} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
SNAPSHOT_TIMEOUT = 60.0
# How long the connections opened wait before memory is read: idle, as a keep-alive connection is between
# a client's visits, for longer than rsp keeps the memos of its last request (rsp.proxy.http_proxy's
# MEMO_IDLE_SECONDS, 1 s) plus one housekeeping tick (1 s).
IDLE_SETTLE = 2.5
# The in-process driver, a sitecustomize module put first on the worker's path: rsp's worker is its own
# process (`python -m rsp worker`, spawned by the master even with `workers = 1`), and the connections live
# there, so the snapshot service runs in the process whose argv ends in `rsp worker` (sys.orig_argv is set
# before site runs), as a daemon thread beside the worker's loop.
INSIDE = r'''
import os, sys
if sys.orig_argv[-2:] == ["rsp", "worker"] and os.environ.get("RSP_BENCH_SNAPSHOTS"):
    import threading

    def serve():
        import gc, json, time, tracemalloc
        from collections import Counter
        ctl = os.environ["RSP_BENCH_SNAPSHOTS"]
        n = 0
        while True:
            req = f"{ctl}/snap-{n}.req"
            while not os.path.exists(req):
                time.sleep(0.05)
            if n == 0:
                tracemalloc.start(8)  # after start-up: tracing rsp's imports would take half a minute
            gc.collect()
            counts = Counter(); sizes = Counter()
            for obj in gc.get_objects():
                name = type(obj).__module__ + "." + type(obj).__qualname__
                counts[name] += 1
                sizes[name] += sys.getsizeof(obj)
                if name.startswith("rsp.") or name == "builtins.list":
                    # what the GC does not track (bytes, str, bytearray, int) shows only through its holder
                    for ref in gc.get_referents(obj):
                        if not gc.is_tracked(ref) and type(ref) not in (type(None), bool):
                            rname = "held by " + name.rsplit(".", 1)[1] + ": " + type(ref).__qualname__
                            counts[rname] += 1
                            sizes[rname] += sys.getsizeof(ref)
            snap = tracemalloc.take_snapshot()
            stats = snap.statistics("lineno")
            sites = {f"{s.traceback[0].filename}:{s.traceback[0].lineno}": s.size for s in stats[:4000]}
            out = {"traced": tracemalloc.get_traced_memory()[0], "counts": counts, "sizes": sizes, "sites": sites}
            with open(f"{ctl}/snap-{n}.json.tmp", "w") as f:
                json.dump(out, f)
            os.rename(f"{ctl}/snap-{n}.json.tmp", f"{ctl}/snap-{n}.json")
            n += 1

    threading.Thread(target=serve, daemon=True).start()
'''


def rss_kib(root: int) -> int:
    total = 0
    for pid in procstat.tree_pids(root, procstat._read_all()):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def open_idle(port: int, count: int, keep: list[socket.socket]) -> None:
    """`count` connections, each with one request answered, left open and idle."""
    for _ in range(count):
        s = socket.create_connection((lib.LOOPBACK, port))
        s.sendall(REQUEST)
        got = b""
        while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise lib.BenchError("the proxy closed a keep-alive connection")
            got += chunk
            if len(got) >= configs.SMALL_BODY_SIZE + 100:
                break
        keep.append(s)


def start_pair(tmp: Path, target: str, servers: lib.Servers, inside: bool) -> tuple[lib.Server, int]:
    port, backend = lib.free_ports(2)
    docroot = configs.write_docroot(tmp)
    servers.start("backend", configs.nginx_backend(shutil.which("nginx") or "nginx", tmp, "backend", backend,
                                                  docroot), backend)
    if target == "haproxy":
        argv = configs.haproxy(shutil.which("haproxy") or "haproxy", tmp, "haproxy", port, [backend], "http")
    else:
        conf = configs.rsp_config(tmp, "rsp", port, [backend], "http")
        argv = [sys.executable, "-m", "rsp", str(conf)]
        if inside:
            site = tmp / "site"
            site.mkdir()
            (site / "sitecustomize.py").write_text(INSIDE)
            path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
            argv = ["env", f"PYTHONPATH={path}", f"RSP_BENCH_SNAPSHOTS={tmp}", *argv]
    return servers.start(target, argv, port, cwd=ROOT), port


def snapshot(tmp: Path, n: int) -> dict[str, object]:
    (tmp / f"snap-{n}.req").touch()
    deadline = time.monotonic() + SNAPSHOT_TIMEOUT
    out = tmp / f"snap-{n}.json"
    while not out.exists():
        if time.monotonic() > deadline:
            raise lib.BenchError("no snapshot from the rsp process")
        time.sleep(0.05)
    data: dict[str, object] = json.loads(out.read_text())
    return data


@dataclass(frozen=True, slots=True)
class IdleRss:
    """VmRSS of a proxy's process tree after 100 warm-up idle connections and after `conns`, then 2 x `conns`
    more."""

    target: str
    conns: int
    first_kib: int
    second_kib: int
    third_kib: int

    @property
    def kb_per_connection(self) -> float:
        """KB (1,000 bytes) per idle connection over the last 2 x `conns`: start-up pages cancel out."""
        return (self.third_kib - self.first_kib) / (2 * self.conns) * 1.024


def idle_rss(target: str, conns: int) -> IdleRss:
    """Start the nginx backend and `target` (rsp `workers = 1` or HAProxy `nbthread 1`), open idle keep-alive
    connections in three steps, read the tree's RSS after each; everything is stopped before returning."""
    keep: list[socket.socket] = []
    with tempfile.TemporaryDirectory(prefix="rsp-idle-") as d:
        servers = lib.Servers(Path(d))
        try:
            proxy, port = start_pair(Path(d), target, servers, inside=False)
            open_idle(port, 100, keep)  # warm-up: pools, caches, first allocations
            time.sleep(IDLE_SETTLE)
            first = rss_kib(proxy.pid)
            open_idle(port, conns, keep)
            time.sleep(IDLE_SETTLE)
            second = rss_kib(proxy.pid)
            open_idle(port, conns, keep)
            time.sleep(IDLE_SETTLE)
            third = rss_kib(proxy.pid)
        finally:
            for s in keep:
                s.close()
            servers.stop_all()
    return IdleRss(target, conns, first, second, third)


def measure_rss(target: str, conns: int) -> None:
    r = idle_rss(target, conns)
    print(f"{target}: RSS {r.first_kib} KiB after 100 idle connections, +{r.second_kib - r.first_kib} KiB for "
          f"{conns} more, +{r.third_kib - r.second_kib} KiB for {conns} more: {r.kb_per_connection:.2f} KB per "
          "connection")


def measure_objects(conns: int, top: int) -> None:
    keep: list[socket.socket] = []
    with tempfile.TemporaryDirectory(prefix="rsp-idle-") as d:
        tmp = Path(d)
        servers = lib.Servers(tmp)
        try:
            _, port = start_pair(tmp, "rsp", servers, inside=True)
            open_idle(port, 100, keep)
            time.sleep(IDLE_SETTLE)
            a = snapshot(tmp, 0)
            open_idle(port, conns, keep)
            time.sleep(IDLE_SETTLE)
            b = snapshot(tmp, 1)
        finally:
            for s in keep:
                s.close()
            servers.stop_all()
    traced = (int(b["traced"]) - int(a["traced"])) / conns  # type: ignore[call-overload]
    print(f"rsp, tracemalloc: {traced:.0f} bytes traced per idle connection ({conns} connections)")
    ca, cb = a["counts"], b["counts"]
    sa, sb = a["sizes"], b["sizes"]
    assert isinstance(ca, dict) and isinstance(cb, dict) and isinstance(sa, dict) and isinstance(sb, dict)
    rows = sorted(((sb.get(k, 0) - sa.get(k, 0), cb.get(k, 0) - ca.get(k, 0), k) for k in set(cb) | set(ca)),
                  reverse=True)
    print(f"gc-tracked objects per connection, by type (sys.getsizeof; total "
          f"{sum(r[0] for r in rows) / conns:.0f} bytes):")
    for size, count, name in rows[:top]:
        if count / conns >= 0.01:
            print(f"  {count / conns:6.2f} x {name:<60} {size / conns:7.0f} bytes")
    pa, pb = a["sites"], b["sites"]
    assert isinstance(pa, dict) and isinstance(pb, dict)
    sites = sorted(((pb.get(k, 0) - pa.get(k, 0), k) for k in set(pb) | set(pa)), reverse=True)
    print("allocation sites (tracemalloc, innermost Python frame), bytes per connection:")
    for size, site in sites[:top]:
        if size / conns >= 1:
            print(f"  {size / conns:7.0f}  {site.replace(str(ROOT) + '/', '')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--targets", default="rsp,haproxy")
    ap.add_argument("--objects", action="store_true", help="rsp in-process: objects per connection by type")
    ap.add_argument("--top", type=int, default=25)
    opts = ap.parse_args()
    if opts.objects:
        measure_objects(opts.conns, opts.top)
        return
    for target in opts.targets.split(","):
        measure_rss(target, opts.conns)


if __name__ == "__main__":
    main()
