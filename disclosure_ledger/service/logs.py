"""Structured logs: one JSON object per line, through the standard library's ``logging``.

Every line has ``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger`` and
``message``; a request's line (:mod:`.request_observer`) adds ``method``, ``route`` (the
route *template*, never the URL asked for), ``status``, ``duration_ms`` and ``actor`` (a
user's name or ``token:<id>``). Nothing else of a request is logged: no query string, no
body, no header, so no subject id (which travels only in POST bodies). ``serve`` configures
it (:func:`configure_logging`) and hands uvicorn the same configuration
(:func:`log_config`), so uvicorn's own lines are JSON too; uvicorn's access log stays off.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

REQUEST_FIELDS = ("method", "route", "status", "duration_ms", "actor", "job_id")
"""Fields a log call may add with ``extra=``; only these are written."""


class JsonLogFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` configuration: every logger, uvicorn's
    included, writes JSON lines to standard error; uvicorn's access log is silenced (the
    service logs requests itself, without their URLs)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLogFormatter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
        "root": {"handlers": ["json"], "level": level},
    }


def configure_logging(level: str = "INFO") -> None:
    """Send every log line of this process through :class:`JsonLogFormatter`."""
    logging.config.dictConfig(log_config(level))
