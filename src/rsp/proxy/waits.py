"""What a client connection in HTTP mode is waiting for (ClientConnection.wait); each has its own timeout
(see ClientConnection.deadline). A module of its own because both sides of an exchange read it."""

from typing import Final

WAIT_HEAD: Final = 0
WAIT_BODY: Final = 1
WAIT_RESPONSE: Final = 2
WAIT_STREAM: Final = 3
WAIT_KEEPALIVE: Final = 4
WAIT_NONE: Final = 5
