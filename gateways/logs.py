"""Structured logging (structlog): one line per event, console for people or JSON for machines."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO, cast

import structlog


class _CurrentStderr:
    """Whatever sys.stderr is now: loggers are cached, and stderr may be swapped (tests, daemons)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(*, json: bool | None = None, level: str | None = None) -> None:
    if json is None:
        json = os.environ.get("TOUCHLINE_LOG_FORMAT", "").strip().lower() == "json"
    level_name = (level or os.environ.get("TOUCHLINE_LOG_LEVEL", "info")).strip().upper()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        # Not cached: a process that configures logging again (the CLI run in-process, tests)
        # must not keep loggers bound to an old level.
        cache_logger_on_first_use=False,
    )
