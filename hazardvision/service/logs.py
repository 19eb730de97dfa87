"""Structured logs: one JSON object per line, for log shippers to read without parsing prose."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"color_message"}  # uvicorn's


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", ...extra fields}`; a traceback goes into one `exc` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in RESERVED and not k.startswith("_")})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: str) -> None:
    """Send the service's and uvicorn's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("hazardvision", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
