"""Celery tasks of the board: take settings or ids, call a service; safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from boards.services.privacy import closed_prospects_erase

logger = logging.getLogger(__name__)


# Erasures per task run: a run stays well inside CELERY_TASK_TIME_LIMIT (about 5 ms
# each), and a backlog (retention switched on over years of closed cards) continues in
# the next run, queued at once.
ERASURES_PER_RUN = 5_000


@shared_task(name="boards.closed_prospects_erase")
def closed_prospects_erase_due() -> int:
    """Erase the personal data of prospects closed more than
    ``VSM_CLOSED_CARD_RETENTION_DAYS`` days ago (nothing when the setting is 0, the
    default: keep), ``ERASURES_PER_RUN`` at most, then queue itself again if that many
    were erased. Returns how many cards this run erased."""
    days: int = settings.VSM_CLOSED_CARD_RETENTION_DAYS
    if days < 1:
        return 0
    erased = closed_prospects_erase(retention_days=days, limit=ERASURES_PER_RUN)
    if erased >= ERASURES_PER_RUN:
        closed_prospects_erase_due.delay()
    if erased:
        logger.info(
            "Erased the personal data of %d prospects closed over %d days ago", erased, days
        )
    return erased
