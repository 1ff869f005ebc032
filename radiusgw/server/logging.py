"""Logs: one JSON object per line on stderr, via structlog.

Never log a password or a secret: the engine logs client address, realm, user and reason only.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(level: str = "info", *, node: str | None = None, **context: Any) -> Any:
    """The server's logger: JSON lines on stderr at ``level`` and up, each carrying ``node=``
    (the gateway's ``--node``; issue 15.5) and ``context``; every worker's logger derives
    from it, so the node is in every line a fleet's log collector receives."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    if node is not None:
        context["node"] = node
    return structlog.get_logger().bind(**context)
