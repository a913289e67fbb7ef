"""Network namespaces and veth pairs by netlink (pyroute2), and their cleanup.

Per sandboxed app: a named netns (`ip netns add`), a veth pair with one end moved inside, the host end with
.1/30 and the app end with .2/30, both up, loopback up inside and a default route via the host end. Outbound
NAT is not set up (off by default, issue 12), and the host end does not forward (its per-interface IPv4
`forwarding` is 0), so an app reaches rsp's host and nothing beyond it: not the other apps' /30s either,
even on a machine that routes (ip_forward=1). NAT mode turns forwarding on for the host ends (rsp.sandbox.nat).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

from pyroute2 import IPRoute

from rsp.errors import SandboxError
from rsp.linux import syscalls
from rsp.sandbox.naming import AppNet

NETNS_DIR = "/run/netns"


def set_forwarding(ifname: str, on: bool) -> None:
    """IPv4 forwarding of packets received on `ifname` (net.ipv4.conf.IF.forwarding)."""
    with open(f"/proc/sys/net/ipv4/conf/{ifname}/forwarding", "w") as f:
        f.write("1" if on else "0")


@contextlib.contextmanager
def thread_in_netns(path: str) -> Iterator[None]:
    """Move the calling thread (only it: a network namespace is per thread) into the netns at `path`, and
    back. Sockets created meanwhile (netlink ones included) belong to that namespace for their life."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.enter_namespace(path, syscalls.CLONE_NEWNET)
        try:
            yield
        finally:
            syscalls.setns(home, syscalls.CLONE_NEWNET)
    finally:
        os.close(home)


def host_netlink() -> Any:
    """An IPRoute in the calling thread's namespace, to pass to several create_app_network calls."""
    return IPRoute()


def _prepare_netns_dir() -> None:
    """/run/netns as a shared mount point, as `ip netns add` makes it, so that the bind mounts below show
    in every mount namespace that sees /run/netns."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    try:
        syscalls.mount("", NETNS_DIR, "none", syscalls.MS_SHARED | syscalls.MS_REC)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        syscalls.mount(NETNS_DIR, NETNS_DIR, "none", syscalls.MS_BIND | syscalls.MS_REC)
        syscalls.mount("", NETNS_DIR, "none", syscalls.MS_SHARED | syscalls.MS_REC)


def create_netns(name: str) -> str:
    """`ip netns add NAME` without a process: the calling thread unshares its network namespace, which is
    bind-mounted on /run/netns/NAME (keeping it alive), then the thread returns to its own. Returns the path."""
    _prepare_netns_dir()
    path = os.path.join(NETNS_DIR, name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        try:
            syscalls.mount("/proc/thread-self/ns/net", path, "none", syscalls.MS_BIND)
        finally:
            syscalls.setns(home, syscalls.CLONE_NEWNET)
    except OSError:
        os.unlink(path)
        raise
    finally:
        os.close(home)
    return path


def create_app_network(net: AppNet, *, forwarding: bool = False, host: Any = None) -> None:
    """Create the app's netns and veth pair, addresses, routes. Raises SandboxError (nothing left behind).

    Call from a worker thread (the thread visits the namespace); `host` is an open IPRoute in the host's
    namespace to reuse across apps."""
    try:
        path = create_netns(net.netns)
        with contextlib.ExitStack() as stack:
            ipr = host if host is not None else stack.enter_context(IPRoute())
            ipr.link("add", ifname=net.host_if, kind="veth", peer={"ifname": net.app_if, "net_ns_fd": net.netns})
            index = ipr.link_lookup(ifname=net.host_if)[0]
            ipr.addr("add", index=index, address=net.host_ip, prefixlen=net.prefixlen)
            set_forwarding(net.host_if, forwarding)
            ipr.link("set", index=index, state="up")
        with thread_in_netns(path), IPRoute() as inside:
            inside.link("set", index=inside.link_lookup(ifname="lo")[0], state="up")
            index = inside.link_lookup(ifname=net.app_if)[0]
            inside.addr("add", index=index, address=net.app_ip, prefixlen=net.prefixlen)
            inside.link("set", index=index, state="up")
            inside.route("add", dst="default", gateway=net.host_ip)
    except Exception as exc:
        remove_app_network(net)
        raise SandboxError(f"cannot create the network namespace {net.netns}: {exc}") from exc


def remove_app_network(net: AppNet) -> None:
    """Remove the veth pair (both ends go together) and the netns; what is already gone is fine."""
    remove_link(net.host_if)
    remove_netns(net.netns)


def remove_link(ifname: str) -> None:
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if found:
            try:
                ipr.link("del", index=found[0])
            except Exception as exc:  # gone meanwhile (its peer's netns was removed): nothing to do
                if getattr(exc, "code", None) != errno.ENODEV:
                    raise


def remove_netns(name: str) -> None:
    """`ip netns del NAME`: unmount (the namespace ends when no process is left in it) and unlink."""
    path = os.path.join(NETNS_DIR, name)
    with contextlib.suppress(OSError):
        syscalls.umount2(path, syscalls.MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def list_netns(prefix: str) -> list[str]:
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if name.startswith(prefix))


def list_links(prefix: str) -> list[str]:
    with IPRoute() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return sorted(str(name) for name in names if name and str(name).startswith(prefix))


def overlapping_routes(network: str, own_prefix: str) -> list[str]:
    """Routes of the main table inside `network` on links that are not this instance's (another rsp, a
    VPN, a LAN): the apps' /30s would clash with them. The default route (/0) contains everything and is
    not a clash."""
    net = ipaddress.IPv4Network(network)
    found: list[str] = []
    with IPRoute() as ipr:
        names = {link["index"]: str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()}
        for route in ipr.get_routes(family=socket.AF_INET, table=254):
            dst, length = route.get_attr("RTA_DST"), route["dst_len"]
            if dst is None or length == 0:
                continue
            device = names.get(route.get_attr("RTA_OIF"), "?")
            theirs = not device.startswith(own_prefix)
            if theirs and net.overlaps(ipaddress.IPv4Network(f"{dst}/{length}", strict=False)):
                found.append(f"{dst}/{length} dev {device}")
    return found


def remove_leftovers(netns_prefix: str, link_prefix: str) -> list[str]:
    """Remove every netns and host link with these prefixes (an earlier run of this instance killed before
    its cleanup). Returns what was removed, for the log."""
    removed: list[str] = []
    for link in list_links(link_prefix):
        remove_link(link)
        removed.append(link)
    for name in list_netns(netns_prefix):
        remove_netns(name)
        removed.append(name)
    return removed
