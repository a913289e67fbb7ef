"""CPU time of a process tree and of the whole machine, read from /proc.

Why process trees: rsp (and nginx with `master_process on`) may fork workers, so the cost of a proxy is the
sum over the root process and every descendant, found by scanning `/proc/*/stat` for ppid links.

`/proc/PID/stat` already sums all threads of a process (proc(5): utime/stime of the thread group), so
`/proc/PID/task/*` is not added on top, which would count threads twice. cutime/cstime (children that
exited and were reaped) are included so that a worker that dies during a run is not lost; a worker that
dies mid-run is then counted whole, not just its share after the first snapshot (rare; noted in README).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")  # usually 100 Hz: one tick is 10 ms of CPU


@dataclass(frozen=True, slots=True)
class ProcTimes:
    pid: int
    ppid: int
    comm: str
    ticks: int  # utime + stime
    child_ticks: int  # cutime + cstime: reaped children

    @property
    def total(self) -> int:
        return self.ticks + self.child_ticks


def parse_stat(text: str) -> ProcTimes:
    """Parse one /proc/PID/stat line. comm is in parentheses and may itself hold spaces or ')'."""
    lpar = text.index("(")
    rpar = text.rindex(")")
    pid = int(text[:lpar])
    comm = text[lpar + 1 : rpar]
    rest = text[rpar + 2 :].split()
    # rest[0] is field 3 (state); proc(5) numbers fields from 1: ppid=4, utime=14, stime=15, cutime=16, cstime=17
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return ProcTimes(pid=pid, ppid=ppid, comm=comm, ticks=utime + stime, child_ticks=cutime + cstime)


def _read_all() -> dict[int, ProcTimes]:
    procs: dict[int, ProcTimes] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                procs[int(name)] = parse_stat(f.read())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # exited between listdir and open
    return procs


def tree_pids(root: int, procs: dict[int, ProcTimes]) -> list[int]:
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    out: list[int] = []
    todo = [root] if root in procs else []
    while todo:  # bounded: each pid is visited once (ppid links form a tree)
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_seconds(roots: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each root's whole process tree."""
    procs = _read_all()
    return {root: sum(procs[p].total for p in tree_pids(root, procs)) / CLK_TCK for root in roots}


def titled_tree_seconds(root: int, prefixes: tuple[str, ...]) -> float:
    """CPU seconds used so far by the processes of `root`'s tree whose command line starts with one of
    `prefixes`: rsp's master and workers by their titles (`rsp: master`, `rsp: worker`), without the sandboxed
    apps it started, which are in its tree too."""
    procs = _read_all()
    ticks = 0
    for pid in tree_pids(root, procs):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile
        if pid == root or command.startswith(prefixes):
            ticks += procs[pid].total
    return ticks / CLK_TCK


# Kernel threads (kthreadd, pid 2, and its children) are left out of the named "other processes": under load
# they are mostly ksoftirqd and kworkers doing this benchmark's own loopback work.
KTHREADD = 2


def machine_busy_seconds() -> float:
    """Busy CPU seconds summed over all CPUs since boot, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


@dataclass(frozen=True, slots=True)
class Snapshot:
    trees: dict[int, float]  # CPU seconds of each root's tree
    ours: float  # CPU seconds of this harness's whole tree: servers, and reaped load generators
    busy: float  # machine busy CPU seconds
    others: dict[int, tuple[str, int]]  # pid -> (comm, utime+stime ticks) of user processes not ours
    children_cpu: float  # our own reaped children (the load generator), from getrusage


def snapshot(roots: list[int]) -> Snapshot:
    """CPU counters of the given trees, of this harness, of the machine, and of every process not ours.

    The servers and load generators are children of this harness, so "ours" is the tree of os.getpid()."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = machine_busy_seconds()
    procs = _read_all()
    mine = tree_pids(os.getpid(), procs)
    mine_set = set(mine)
    others = {pid: (p.comm, p.ticks) for pid, p in procs.items()
              if pid not in mine_set and pid != KTHREADD and p.ppid != KTHREADD}
    trees = {root: sum(procs[p].total for p in tree_pids(root, procs)) / CLK_TCK for root in roots}
    return Snapshot(trees=trees, ours=sum(procs[p].total for p in mine) / CLK_TCK, busy=busy, others=others,
                    children_cpu=ru.ru_utime + ru.ru_stime)


def other_seconds(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds the rest of the machine used between the snapshots: busy time minus this harness's tree.

    Exact for processes that start and exit in between (unlike per-process sums, which miss them or, via a
    parent's cutime, count work done before the first snapshot). Includes kernel threads."""
    return max(0.0, (after.busy - before.busy) - (after.ours - before.ours))


def other_by_comm(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """utime+stime used between the snapshots by live processes outside this harness, by command name.

    A hint at who the "other load" was: a process that started in between counts whole, one that exited in
    between is missed. A pid reused in between is treated as new."""
    used: dict[str, float] = {}
    for pid, (comm, ticks) in after.others.items():
        prev = before.others.get(pid)
        delta = ticks - prev[1] if prev and prev[0] == comm else ticks
        if delta > 0:
            used[comm] = used.get(comm, 0.0) + delta / CLK_TCK
    return used
