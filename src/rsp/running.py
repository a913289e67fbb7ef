"""The running rsp of a config, and whether it is the one holding an address (for `rsp --check` while it
runs, and for refusing to take a live rsp's admin socket).

The edit, check, reload routine of nginx operators: `rsp --check CONFIG` on the config of the instance that
runs finds its listen ports in use, by that instance. Such a port is fine (a reload keeps the socket); one
held by another program is still an error. The running instance is found, in this order, through the
config's `pid_file`, its admin socket (the peer of a connection to it: SO_PEERCRED, unix(7)), and the
process titled `rsp: master CONFIG` (rsp.proctitle). A listening socket is that process's when one of its
descriptors is the socket inode that /proc/net/tcp{,6} lists in state LISTEN on the address (proc(5)).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct
from typing import Final

from rsp.pidfile import running_master
from rsp.proctitle import master_title, title_of

# /proc/net/tcp's `st` column for a listening socket (include/net/tcp_states.h: TCP_LISTEN = 10).
TCP_LISTEN_STATE: Final = "0A"
# /proc/net/unix's Flags bit of a listening socket (__SO_ACCEPTCON in include/linux/net.h).
UNIX_ACCEPTING: Final = 0x10000
# How long a liveness probe of an admin socket waits for the connection.
PROBE_TIMEOUT: Final = 1.0
# struct ucred {pid_t pid; uid_t uid; gid_t gid;} (unix(7) SO_PEERCRED)
UCRED: Final = struct.Struct("iII")


def peer_pid(path: str, timeout: float = PROBE_TIMEOUT) -> int | None:
    """The pid of whoever accepts connections on the Unix socket `path` (None: nobody, or not a socket)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size)
        except OSError:
            return None
    pid, _, _ = UCRED.unpack(raw)
    return pid if pid > 0 else None


def running_instance(config_path: str, pid_file: str = "", admin_socket: str = "") -> int | None:
    """The pid of the rsp master that runs `config_path` now, or None."""
    if pid_file and (pid := running_master(pid_file)) is not None:
        return pid
    wanted = master_title(os.path.abspath(config_path))
    # The admin socket's peer counts only if it runs this config (another config may share the path).
    if admin_socket and (pid := peer_pid(admin_socket)) is not None and title_of(pid) == wanted:
        return pid
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and title_of(int(entry)) == wanted:
            return int(entry)
    return None


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[len("socket:["):-1]))
    return inodes


def _decode_address(hex_address: str) -> tuple[str, int]:
    """proc(5): the address as the kernel's 32-bit words in host byte order, then the port in hex."""
    address, port = hex_address.split(":")
    raw = bytes.fromhex(address)
    words = b"".join(struct.pack("=I", struct.unpack(">I", raw[i:i + 4])[0]) for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words)), int(port, 16)


def listening_inodes(host: str, port: int) -> set[int]:
    """Inodes of the sockets listening on host:port in this network namespace (host as bind resolves it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return set()
    wanted = {str(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos}
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as fh:
            next(fh, None)  # the header line
            for line in fh:
                cols = line.split()
                if len(cols) < 10 or cols[3] != TCP_LISTEN_STATE:
                    continue
                address, bound_port = _decode_address(cols[1])
                if bound_port == port and address in wanted:
                    found.add(int(cols[9]))
    return found


def can_inspect(pid: int) -> bool:
    """Whether this process may list `pid`'s descriptors (its own user's, or root: ptrace access mode)."""
    try:
        os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    return True


def held_by(pid: int, host: str, port: int) -> bool:
    """Whether process `pid` holds the socket listening on host:port."""
    inodes = listening_inodes(host, port)
    return bool(inodes) and bool(inodes & _socket_inodes(pid))


def unix_listening_paths(pid: int) -> list[str]:
    """The paths of the Unix sockets process `pid` listens on (/proc/net/unix, flag __SO_ACCEPTCON): the
    admin socket of a running rsp whose config no longer loads."""
    inodes = _socket_inodes(pid)
    paths: list[str] = []
    with contextlib.suppress(OSError), open("/proc/net/unix", encoding="utf-8", errors="replace") as fh:
        next(fh, None)
        for line in fh:
            cols = line.split()
            if len(cols) >= 8 and int(cols[3], 16) & UNIX_ACCEPTING and int(cols[6]) in inodes:
                paths.append(cols[7])
    return paths
