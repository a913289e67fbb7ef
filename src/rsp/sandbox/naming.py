"""Names and addresses of an instance's sandboxes: pure functions, tested without root.

Every namespace, interface and nftables table rsp creates carries a prefix plus the instance tag, so that the
start-up cleanup of one rsp removes its own leftovers and never those of another rsp (or of another test run)
on the same machine. The tag is `sandbox_instance` when set, else six hex digits of a hash of the config
file's absolute path: the same config started again finds what its killed predecessor left.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass
from typing import Final

NETNS_PREFIX: Final = "rsp-"
# Interface names are limited to 15 bytes (IFNAMSIZ - 1): "rs" + tag (<= 6) + "-h" or "-a" + index (<= 5
# digits, 16384 /30s in a /16) is at most 15. The tag has no '-', so "rs{tag}-" is a prefix no other tag has.
LINK_PREFIX: Final = "rs"
NFT_TABLE_PREFIX: Final = "rsp_"
DERIVED_TAG_LEN: Final = 6
# A /30 per app: network, host end (.1), app end (.2), broadcast.
APP_PREFIXLEN: Final = 30


def instance_tag(config_path: str, explicit: str = "") -> str:
    if explicit:
        return explicit
    digest = hashlib.sha256(os.path.abspath(config_path).encode()).hexdigest()
    return digest[:DERIVED_TAG_LEN]


@dataclass(frozen=True, slots=True)
class AppNet:
    """Where one sandboxed app lives on the network."""

    netns: str  # named network namespace (/run/netns/NAME)
    host_if: str  # veth end on the host, with host_ip
    app_if: str  # veth end inside, with app_ip
    host_ip: str
    app_ip: str
    prefixlen: int = APP_PREFIXLEN


def netns_prefix(tag: str) -> str:
    return f"{NETNS_PREFIX}{tag}-"


def link_prefix(tag: str) -> str:
    return f"{LINK_PREFIX}{tag}-"


def nft_table(tag: str) -> str:
    return f"{NFT_TABLE_PREFIX}{tag}"


def app_net(tag: str, network: str, index: int, app: str) -> AppNet:
    """The `index`-th (0-based) sandboxed app's namespace, interfaces and /30 in `network`."""
    net = ipaddress.IPv4Network(network)
    base = int(net.network_address) + index * 4
    if base + 3 > int(net.broadcast_address):
        raise ValueError(f"network {network} has no room for app number {index + 1}")
    return AppNet(
        netns=f"{netns_prefix(tag)}{app}",
        host_if=f"{link_prefix(tag)}h{index}",
        app_if=f"{link_prefix(tag)}a{index}",
        host_ip=str(ipaddress.IPv4Address(base + 1)),
        app_ip=str(ipaddress.IPv4Address(base + 2)),
    )


def runtime_dir(base: str, tag: str) -> str:
    """This instance's directory for the state file and logs."""
    return os.path.join(base, f"sandbox-{tag}")
