"""Log output: one line per event on stderr, each prefixed `[YYYY-MM-DD HH:MM:SS.ffffff +zzzz] `.

The timestamp format is the original rsp's (local time with microseconds and the UTC offset); the startup
lines on stdout carry the same prefix (`stamped`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from rsp.logsink import LogSink, reopen_all

LOGGER_NAME = "rsp"


TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %z"


def stamped(message: str, when: float | None = None) -> str:
    """`[timestamp] message`, the timestamp of `when` (a time.time() value; now when None)."""
    moment = datetime.now() if when is None else datetime.fromtimestamp(when)
    return f"[{moment.astimezone().strftime(TIMESTAMP_FORMAT)}] {message}"


class TimestampFormatter(logging.Formatter):
    """`[timestamp] message`, or `[timestamp] TAG: message` in a process that names itself (a worker:
    `worker 2.1: ...`, worker 1 of generation 2), so that lines from several processes can be told apart."""

    def __init__(self, tag: str = "") -> None:
        super().__init__()
        self.prefix = f"{tag}: " if tag else ""

    def format(self, record: logging.LogRecord) -> str:
        text = stamped(self.prefix + record.getMessage(), record.created)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class SinkHandler(logging.Handler):
    """Log records to a LogSink: never blocks, drops (and counts) lines when the destination is stuck."""

    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.sink.close()
        super().close()


def setup_logging(level: str = "info", error_log: str = "", tag: str = "") -> logging.Logger:
    """rsp's log lines to `error_log` ("" = stderr), reopened by rsp.logsink.reopen_all(); each line names
    `tag` (a worker's name) when given."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in logger.handlers:
        old.close()
    logger.handlers.clear()
    handler = SinkHandler(LogSink(error_log, 2, lambda count: stamped(
        f"{count} log line(s) dropped: the log destination was not keeping up") + "\n"))
    handler.setFormatter(TimestampFormatter(tag))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def reopen_logs() -> None:
    """SIGUSR1: reopen every log file of this process (after logrotate moved them), and say so."""
    for failure in reopen_all():
        get_logger().error("cannot reopen log file %s", failure)
    get_logger().info("SIGUSR1 received: log files reopened")
