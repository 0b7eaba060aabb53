"""Kopf's routine success lines at DEBUG, so that INFO is what changed or was decided.

Kopf logs ``Timer 'resync' succeeded.`` at INFO after every run of every handler, and 1.45 has
no setting for it (``settings.posting`` only chooses which log lines become Events). With a 5 s
drift tick (then a Kopf timer too) and a 60 s resync, 200 + 200 objects made ~2,600 such lines a
minute at rest. The
operator's decisions are logged and posted as Events by its own code, and Kopf's failures,
retries and ``... is processed`` summaries keep their levels: only ``<kind> '<id>' succeeded.``
moves to DEBUG (shown with ``modelops operator --verbose``).
"""

from __future__ import annotations

import logging
import re
from typing import Final

KOPF_OBJECT_LOGGER: Final = "kopf.objects"
"""Where Kopf logs what happens to each object (kopf/_core/actions/loggers.py)."""
ROUTINE_SUCCESS: Final = re.compile(r"(?:Handler|Timer|Daemon|Activity) '[^']*' succeeded\.")


class RoutineSuccessToDebug(logging.Filter):
    """Relabels Kopf's per-handler success lines as DEBUG, dropped unless DEBUG is on."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not ROUTINE_SUCCESS.fullmatch(record.getMessage()):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return self.logger.isEnabledFor(logging.DEBUG)


def quiet_routine_successes() -> None:
    """Install the filter on Kopf's object logger (once; call after ``kopf.configure``)."""
    logger = logging.getLogger(KOPF_OBJECT_LOGGER)
    if not any(isinstance(f, RoutineSuccessToDebug) for f in logger.filters):
        logger.addFilter(RoutineSuccessToDebug(logger))
