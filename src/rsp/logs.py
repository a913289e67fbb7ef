"""Log output: one line per event on stderr, each prefixed `[YYYY-MM-DD HH:MM:SS.ffffff +zzzz] `.

The timestamp format is the original rsp's (local time with microseconds and the UTC offset); the startup
lines on stdout carry the same prefix (`stamped`).
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime

LOGGER_NAME = "rsp"


TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %z"


def stamped(message: str, when: float | None = None) -> str:
    """`[timestamp] message`, the timestamp of `when` (a time.time() value; now when None)."""
    moment = datetime.now() if when is None else datetime.fromtimestamp(when)
    return f"[{moment.astimezone().strftime(TIMESTAMP_FORMAT)}] {message}"


class TimestampFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = stamped(record.getMessage(), record.created)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: str = "info") -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TimestampFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)
