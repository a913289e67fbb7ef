"""Log output: one line per event on stderr, each prefixed `[YYYY-MM-DD HH:MM:SS.ffffff +zzzz] `.

The timestamp format is the original rsp's (local time with microseconds and the UTC offset).
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime

LOGGER_NAME = "rsp"


class TimestampFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).astimezone().strftime("%Y-%m-%d %H:%M:%S.%f %z")
        text = f"[{stamp}] {record.getMessage()}"
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
