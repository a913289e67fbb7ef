"""forward_mode = "nat": the forwards as nftables DNAT, in a table of this rsp instance's own.

- prerouting: a connection arriving for a local address on a forwarded port is DNAT'ed to the app's
  address and port, then forwarded into the app's veth (so IPv4 forwarding is turned on: net.ipv4.ip_forward
  and the host ends' per-interface forwarding, as Docker does for published ports);
- output: the same for connections the host itself opens (to any of its addresses, 127.0.0.1 included);
- postrouting: a connection from 127.0.0.0/8 leaving through an app's veth is masqueraded to the host end's
  address, since the app would answer 127.0.0.1 on its own loopback; the kernel only routes a 127/8 source
  out of a non-loopback device with route_localnet=1 on it, which is set on the host ends;
- forward: nothing is forwarded from one app's veth to another's, so apps stay unreachable from each other.

The table is created with one `nft -f` transaction and deleted as a whole; no rule outside it is touched.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from typing import Final

from rsp.config.model import Forward
from rsp.errors import SandboxError
from rsp.sandbox.naming import AppNet, link_prefix, nft_table

NFT: Final = "nft"
# nft runs once at start and once at stop; a hung nft must not hang rsp.
NFT_TIMEOUT: Final = 10.0


def ruleset(tag: str, forwards: Sequence[Forward], nets: Mapping[str, AppNet | None]) -> str:
    """The nft script that creates this instance's table (pure: tested without root)."""
    links = f'"{link_prefix(tag)}h*"'
    dnat = []
    for fwd in forwards:
        net = nets[fwd.app]
        if net is None:
            raise SandboxError(f"forward {fwd.port}: app {fwd.app} is not sandboxed")
        dnat.append(f"fib daddr type local tcp dport {fwd.port} dnat to {net.app_ip}:{fwd.app_port}")
    rules = "\n".join(f"    {rule}" for rule in dnat)
    return f"""table ip {nft_table(tag)} {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
{rules}
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
{rules}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname {links} ip saddr 127.0.0.0/8 masquerade
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname {links} oifname {links} drop
  }}
}}
"""


def _sysctl(path: str, value: str) -> None:
    with open(f"/proc/sys/net/ipv4/{path}", "w") as f:
        f.write(value)


def apply(tag: str, forwards: Sequence[Forward], nets: Mapping[str, AppNet | None]) -> None:
    script = ruleset(tag, forwards, nets)
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            if f.read().strip() != "1":
                _sysctl("ip_forward", "1")  # resets every interface's forwarding: set ours again below
        for net in nets.values():
            if net is not None:
                _sysctl(f"conf/{net.host_if}/forwarding", "1")
                _sysctl(f"conf/{net.host_if}/route_localnet", "1")
        done = subprocess.run([NFT, "-f", "-"], input=script, capture_output=True, text=True, timeout=NFT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"cannot set up the NAT forwards: {exc}") from exc
    if done.returncode != 0:
        raise SandboxError(f"nft refused the NAT forwards: {done.stderr.strip()}")


def remove(tag: str) -> bool:
    """Delete this instance's table if it exists; True if it did. Without nft installed there is none."""
    try:
        listed = subprocess.run([NFT, "list", "table", "ip", nft_table(tag)], capture_output=True,
                                timeout=NFT_TIMEOUT)
        if listed.returncode != 0:
            return False
        subprocess.run([NFT, "delete", "table", "ip", nft_table(tag)], capture_output=True, timeout=NFT_TIMEOUT,
                       check=True)
    except FileNotFoundError:
        return False
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(f"cannot delete nft table {nft_table(tag)}: {exc}") from exc
    return True
