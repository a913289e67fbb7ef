"""Log lines for the PAM module, sent to the syslog socket directly.

Not the `syslog` module: its first call runs openlog(3), which would change the ident and default facility
of the login program that loaded us (sshd, su) for the rest of its life. One datagram in the format
glibc's syslog(3) writes (RFC 3164 without the host name, which the daemon adds) changes nothing in the host
process. Facility AUTHPRIV: what Linux-PAM modules log to (pam_syslog(3)), readable by root only.
"""

from __future__ import annotations

import os
import socket
import syslog
import time
from typing import Final

FACILITY: Final = syslog.LOG_AUTHPRIV
IDENT: Final = "pam_unshare"
# syslog daemons truncate long datagrams anyway; a reason longer than this is cut here, whole words lost.
MAX_MESSAGE_BYTES: Final = 1024


def format_line(priority: int, message: str, *, pid: int, when: time.struct_time) -> bytes:
    """`<PRI>Mmm dd hh:mm:ss pam_unshare[PID]: MESSAGE` (PRI = facility | priority, RFC 3164 §4.1.1)."""
    stamp = time.strftime("%b %d %H:%M:%S", when)
    if stamp[4] == "0":  # RFC 3164 §4.1.2: a day below 10 is padded with a space, not a zero
        stamp = f"{stamp[:4]} {stamp[5:]}"
    text = " ".join(message.split())  # one line: a newline would start a forged line on some daemons
    line = f"<{FACILITY | priority}>{stamp} {IDENT}[{pid}]: {text}".encode(errors="replace")
    return line[:MAX_MESSAGE_BYTES]


class SyslogSender:
    """Sends lines at or above `level` to the datagram socket `address`; a missing daemon loses the line.

    A log failure must never fail a login, so every OSError is swallowed.
    """

    def __init__(self, address: str, level: int) -> None:
        self.address = address
        self.level = level

    def log(self, priority: int, message: str) -> None:
        if priority > self.level:  # syslog priorities: lower is more severe
            return
        line = format_line(priority, message, pid=os.getpid(), when=time.localtime())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(line, self.address)
        except OSError:
            pass
