"""Does this process hold the capabilities the sandbox needs? Read from /proc/self/status (no libcap)."""

from __future__ import annotations

from typing import Final

# <linux/capability.h>
CAP_NET_ADMIN: Final = 12
CAP_SYS_ADMIN: Final = 21
# What each is needed for, for the error message.
SANDBOX_CAPABILITIES: Final = {
    "CAP_SYS_ADMIN": (CAP_SYS_ADMIN, "PID, mount and UTS namespaces, mounting /proc"),
    "CAP_NET_ADMIN": (CAP_NET_ADMIN, "network namespaces, veth pairs, addresses and routes"),
}


def effective_capabilities(status_text: str) -> int:
    """The CapEff bit mask of a /proc/PID/status text."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def missing_capabilities(mask: int) -> list[str]:
    """Names (with what they are for) of the sandbox capabilities not in `mask`."""
    return [f"{name} ({why})" for name, (bit, why) in SANDBOX_CAPABILITIES.items() if not mask >> bit & 1]


def missing_here() -> list[str]:
    with open("/proc/self/status") as f:
        return missing_capabilities(effective_capabilities(f.read()))
