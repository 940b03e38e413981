"""When a board event happened: now, or a time given by an import or a correction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from boards.errors import InvalidMove

# Flow metrics integrate every column over time, day by day, from the first event:
# a card dated in 1900 (a typo) would hold a century of days. No CRM history is older.
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
# Clocks of web and worker machines differ a little; an event further ahead than this
# is a wrong date, and would move the stream's clock into the future.
CLOCK_SKEW = timedelta(minutes=5)


def event_time(at: datetime | None) -> datetime:
    """The time to record an event at: now by default, else ``at``, which must be
    timezone-aware, not before EARLIEST_EVENT and not after now (give or take
    CLOCK_SKEW).

    Raises: InvalidMove, with a message fit to show.
    """
    now = timezone.now()
    if at is None:
        return now
    if timezone.is_naive(at):
        raise InvalidMove("An event's time needs its time zone.")
    if at < EARLIEST_EVENT:
        raise InvalidMove(f"An event cannot be dated before {EARLIEST_EVENT:%Y-%m-%d}.")
    if at > now + CLOCK_SKEW:
        raise InvalidMove("An event cannot be dated in the future.")
    return at
