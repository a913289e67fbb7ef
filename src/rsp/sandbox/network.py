"""Network namespaces and veth pairs by netlink (pyroute2), and their cleanup.

Per sandboxed app: a named netns (`ip netns add`), a veth pair with one end moved inside, the host end with
.1/30 and the app end with .2/30, both up, loopback up inside and a default route via the host end. Outbound
NAT is not set up (off by default, issue 12), and the host end does not forward (its per-interface IPv4
`forwarding` is 0), so an app reaches rsp's host and nothing beyond it: not the other apps' /30s either,
even on a machine that routes (ip_forward=1). NAT mode turns forwarding on for the host ends (rsp.sandbox.nat).
"""

from __future__ import annotations

import errno
import os

from pyroute2 import IPRoute, netns

from rsp.errors import SandboxError
from rsp.sandbox.naming import AppNet

NETNS_DIR = "/run/netns"


def set_forwarding(ifname: str, on: bool) -> None:
    """IPv4 forwarding of packets received on `ifname` (net.ipv4.conf.IF.forwarding)."""
    with open(f"/proc/sys/net/ipv4/conf/{ifname}/forwarding", "w") as f:
        f.write("1" if on else "0")


def create_app_network(net: AppNet, *, forwarding: bool = False) -> None:
    """Create the app's netns and veth pair, addresses, routes. Raises SandboxError (nothing left behind)."""
    try:
        netns.create(net.netns)
        with IPRoute() as ipr:
            ipr.link("add", ifname=net.host_if, kind="veth", peer={"ifname": net.app_if, "net_ns_fd": net.netns})
            index = ipr.link_lookup(ifname=net.host_if)[0]
            ipr.addr("add", index=index, address=net.host_ip, prefixlen=net.prefixlen)
            set_forwarding(net.host_if, forwarding)
            ipr.link("set", index=index, state="up")
        with IPRoute(netns=net.netns) as inside:
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
    if os.path.exists(os.path.join(NETNS_DIR, name)):
        netns.remove(name)


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
