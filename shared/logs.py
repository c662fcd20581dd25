"""Logging for every Portside process: one JSON object a line when stderr is not a terminal (a log shipper
reads it), readable text on a terminal. Every line logged while a job runs carries the job's correlation id and
deployment id: the worker wrapper sets them in context variables (`job_context`), which asyncio copies into
every task the handler starts."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
deployment_id: ContextVar[int | None] = ContextVar("deployment_id", default=None)


@contextmanager
def job_context(correlation: str | None, deployment: int | None) -> Iterator[None]:
    """Tag every line logged inside with the job's ids."""
    tokens = correlation_id.set(correlation), deployment_id.set(deployment)
    try:
        yield
    finally:
        correlation_id.reset(tokens[0])
        deployment_id.reset(tokens[1])


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, service, logger, message, the job's ids when set, and the traceback."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        correlation, deployment = correlation_id.get(), deployment_id.get()
        if correlation is not None:
            line["correlation_id"] = correlation
        if deployment is not None:
            line["deployment_id"] = deployment
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """The terminal's format; the job's ids appear as [deployment 7 corr=...] after the level."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s {service} %(levelname)s %(name)s:%(job)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        correlation, deployment = correlation_id.get(), deployment_id.get()
        parts = [f"deployment {deployment}"] if deployment is not None else []
        parts += [f"corr={correlation}"] if correlation is not None else []
        record.job = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


def configure_logging(service: str, stream: IO[str] | None = None) -> None:
    """Log to stderr (or `stream`) as JSON lines, or as text when it is a terminal."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter(service) if stream.isatty() else JsonFormatter(service))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
