"""Sandboxed apps: each app in its own network, PID, mount and UTS namespaces, supervised by rsp.

naming (names and addresses, pure), network (netns and veth by netlink), nat (nftables DNAT for
forward_mode "nat"), launcher (the fork chain into the namespaces), logfiles (bounded app logs), state (the
file `rsp apps` reads), manager (ties them to the Supervisor and the pools). See docs/sandbox.md.
"""
