"""Logging for every opsbot process: one format for the app and its HTTP server, a level, a JSON option.

`OPSBOT_LOG_LEVEL` (default INFO) and `OPSBOT_LOG_FORMAT` (`text` or `json`) decide; uvicorn's
loggers are routed through the same handler. State changes an operator cares about (a page
opened, a handoff, an SLA breach, an outbox give-up) are logged with `event()`: one line whose
ids are fields (`key=value` in text, keys of the JSON object in JSON).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Chatty at INFO about their own housekeeping; opsbot logs what matters itself.
QUIET_AT_INFO = ("apscheduler", "slack_bolt.App", "httpx", "alembic.runtime.plugins")
# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# uvicorn adds an ANSI-coloured copy of its message to its records; the plain one is enough.
_DROPPED = frozenset({"color_message"})


class KeyValueFormatter(logging.Formatter):
    """The text format: the usual line, then each field as key=value (quoted when it has spaces)."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {
            k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS and k not in _DROPPED
        }
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        pairs = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        return f"{head} {pairs}{newline}{rest}"


def _text(value: Any) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def formatter(fmt: str) -> logging.Formatter:
    """The formatter for `text` or `json`; both stamp lines in UTC, ISO 8601."""
    chosen: logging.Formatter
    if fmt == "json":
        chosen = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
            reserved_attrs=[*RESERVED_ATTRS, *_DROPPED],
        )
    else:
        chosen = KeyValueFormatter(TEXT_FORMAT)
    chosen.converter = time.gmtime
    chosen.default_time_format = "%Y-%m-%dT%H:%M:%S"
    chosen.default_msec_format = "%s.%03dZ"
    return chosen


class _Handler(logging.StreamHandler):
    """opsbot's one handler; without a stream it writes to whatever sys.stderr is at the time."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # set once through __init__


def configure(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every logger (opsbot's, uvicorn's, the libraries') to one handler in one format.

    Calling it again replaces opsbot's handler; handlers others put on the root logger stay.
    """
    handler = _Handler(stream)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server = logging.getLogger(name)
        server.handlers.clear()
        server.propagate = True
    quiet = logging.WARNING if logging.getLevelName(level) >= logging.INFO else logging.NOTSET
    for name in QUIET_AT_INFO:
        logging.getLogger(name).setLevel(quiet)


def event(logger: logging.Logger, what: str, /, level: int = logging.INFO, **ids: Any) -> None:
    """One log line for a state change, its ids as fields: `event(log, "page acknowledged",
    page_id=12, by="U0ENG00001")` -> `... page acknowledged page_id=12 by=U0ENG00001`."""
    fields = {(f"{k}_" if k in _RECORD_ATTRS else k): v for k, v in ids.items() if v is not None}
    logger.log(level, what, extra=fields)
