"""Log lines of the hub: human-readable text (the default) or one JSON object a line (`IOXHUB_LOG_FORMAT=json`).

`configure(settings)` installs the handler the setting asks for (the CLI and the DAG tasks call it);
`with_context(logger, run_id=..., org=...)` is a LoggerAdapter whose fields go into every record it logs
(and into the JSON object: `CONTEXT_FIELDS`); `JsonFormatter` writes a record as JSON with the secret
values of the settings masked. Why a small formatter of our own and not python-json-logger: docs/operations.md.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, MutableMapping, TextIO

from ioxhub.settings import Settings

# The fields a hub log line may carry, in the order they are written.
CONTEXT_FIELDS = ("run_id", "kind", "org", "dataset", "release_id", "topic", "partition", "offset",
                  "first_offset", "last_offset")
HUB_LOGGERS = ("ioxhub", "producers", "consumers", "app")
_HANDLER_NAME = "ioxhub-json"


class ContextAdapter(logging.LoggerAdapter):
    """A logger with fixed context fields; fields given per call (`extra=`) are added to them."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs

    def bind(self, **fields: Any) -> "ContextAdapter":
        """This adapter with more fields (None values are left out)."""
        return ContextAdapter(self.logger, {**(self.extra or {}), **{k: v for k, v in fields.items() if v is not None}})


def with_context(logger: logging.Logger | ContextAdapter, **fields: Any) -> ContextAdapter:
    if isinstance(logger, ContextAdapter):
        return logger.bind(**fields)
    return ContextAdapter(logger, {k: v for k, v in fields.items() if v is not None})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the context fields
    present on the record, and the traceback of an exception; every value of `secrets` masked."""

    def __init__(self, secrets: list[str] | tuple[str, ...] = ()):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        text = json.dumps(doc, default=str, ensure_ascii=False)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def configure(settings: Settings, stream: TextIO | None = None) -> None:
    """With `log_format = json`: the hub's loggers (INFO) and everything else (WARNING) write JSON lines
    to `stream` (default stderr), through one handler on the root logger (installed once). With `text`
    nothing changes: the process's own logging configuration (a terminal's, Airflow's) stays."""
    if settings.log_format != "json":
        return
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.set_name(_HANDLER_NAME)
        root.addHandler(handler)
        if root.level > logging.WARNING or root.level == logging.NOTSET:
            root.setLevel(logging.WARNING)
    handler.setFormatter(JsonFormatter(settings.secret_values()))
    for name in HUB_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
