"""The metrics services: advance a stream's running aggregates through new moves,
recompute its metrics document, rebuild everything from the move log.

The fold's cost is proportional to the new moves (metrics.fold has its per-move logic):
each move updates one card's flow state, a few day buckets and all-time counters. A
rebuild runs the very same per-move logic from an empty state, so the incremental and
the rebuilt numbers are identical by construction.

The metrics document (``StreamMetrics``) is computed after the fold has committed, in
its own short transaction, from the aggregates only.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.mail import EmailMultiAlternatives, mailers
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Now
from django.template.loader import render_to_string
from django.utils import timezone

from boards.models import CardMove
from metrics import fold as folding
from metrics.fold import AGGREGATES
from metrics.models import (
    REVIEW_ENTRY_MAX_LENGTH,
    DigestDelivery,
    DigestSubscription,
    MetricsProgress,
    ReviewEntry,
    ReviewEntryKind,
    StreamMetrics,
    WeeklySnapshot,
)
from metrics.selectors.query import last_full_week
from vsm.access import stream_access, stream_members_check, stream_steer_check, streams_visible_to
from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.errors import InvalidInput, NotFound, PermissionRefused
from vsm.models import ValueStream
from vsm.transactions import locking_transaction

logger = logging.getLogger(__name__)

# A move's transaction cannot outlive this (boards.services bounds it with statement,
# lock and idle timeouts), so a move written more than twice this long ago is settled:
# no move with a smaller id can still appear. See docs/metrics.md.
SETTLE_SECONDS = 60
# Under a steady stream of moves the document is recomputed at most this often (the
# fold itself runs after every move). It reads only the window and small all-time
# counters, ~0.1 s on a 1,000,000-move log, so this mostly coalesces bursts.
SUMMARY_MIN_INTERVAL = timedelta(seconds=0.5)
# A document also depends on the clock (ages, the window, flow up to now) and on the
# board (blocked cards, WIP limits, whose refresh may have been lost with the broker):
# the sweeper recomputes any document older than this.
DOCUMENT_MAX_AGE = timedelta(minutes=15)
BATCH_SIZE = 5_000
REBUILD_BATCH_SIZE = 50_000


def _settled_watermark(stream_id: int, progress: MetricsProgress) -> None:
    """Raise the watermark to the newest applied move that is settled (see
    SETTLE_SECONDS): no move below it can still commit."""
    settled = CardMove.objects.filter(
        value_stream_id=stream_id,
        pk__gt=progress.watermark_move_id,
        pk__lte=progress.last_applied_move_id,
        recorded_at__lt=Now() - timedelta(seconds=SETTLE_SECONDS * 2),
    ).aggregate(m=Max("id"))["m"]
    if settled:
        progress.watermark_move_id = settled


_PROGRESS_FIELDS = [
    "watermark_move_id",
    "last_applied_move_id",
    "applied_moves",
    "last_run_at",
    "folded_layout",
]


@dataclass(frozen=True)
class AdvanceResult:
    stream_id: int
    applied: int
    last_applied_move_id: int
    watermark_move_id: int
    skipped_busy: bool = False
    # Seconds until the metrics document may be recomputed, when this run deferred it.
    summary_due_in: float | None = None


def _advance(fold: folding.Fold, progress: MetricsProgress) -> int:
    """Fold the moves the aggregates have not seen, under the progress row's lock;
    returns how many were applied."""
    stream_id = progress.value_stream_id
    # Moves that committed late, below the last applied one: few or none.
    late = folding.read_moves(
        stream_id,
        pk__gt=progress.watermark_move_id,
        pk__lte=progress.last_applied_move_id,
        filter_q=Q(card__cardflowstate__isnull=True)
        | Q(card__cardflowstate__last_move_id__lt=F("id")),
    )
    applied = folding.fold_moves(fold, late)
    fold.write()
    # Then the new ones, in batches so a long backlog stays in memory.
    cursor = progress.last_applied_move_id
    while batch := folding.read_moves(stream_id, pk__gt=cursor, limit=BATCH_SIZE):
        applied += folding.fold_moves(fold, batch)
        fold.write()
        cursor = batch[-1][0]
    progress.last_applied_move_id = cursor
    _settled_watermark(stream_id, progress)
    progress.applied_moves += applied
    progress.last_run_at = timezone.now()
    progress.folded_layout = fold.layout
    # Only the fold's fields: the document's are written by stream_metrics_summarize.
    progress.save(update_fields=_PROGRESS_FIELDS)
    return applied


def stream_metrics_advance(
    *, stream_id: int, summarize: bool = True, throttle: bool = False
) -> AdvanceResult:
    """Fold every committed move the stream's aggregates have not seen and commit it,
    then refresh the stream's metrics document in a transaction of its own.

    The fold costs in proportion to the new moves; the document reads the window and
    small all-time counters, so with ``throttle`` it is recomputed at most once per
    SUMMARY_MIN_INTERVAL and the result says when it is due. If the time zone or the
    stream's columns changed since the aggregates were folded (their layout_key), it
    rebuilds them from the log instead (stream_metrics_rebuild).
    Locks: the stream's progress row, during the fold only (SKIP LOCKED: a run already
    in progress will see these moves, so this one returns at once; bursts coalesce).
    Side effects: writes aggregates, progress and StreamMetrics.
    """
    MetricsProgress.objects.get_or_create(value_stream_id=stream_id)
    with transaction.atomic():
        progress = (
            MetricsProgress.objects.select_for_update(skip_locked=True)
            .filter(value_stream_id=stream_id)
            .first()
        )
        if progress is None:
            return AdvanceResult(stream_id, 0, 0, 0, skipped_busy=True)
        fold = folding.Fold.for_stream(stream_id)
        refold = progress.last_applied_move_id > 0 and progress.folded_layout != fold.layout
        if not refold:
            applied = _advance(fold, progress)
    if refold:
        logger.info("Stream %s: time zone or columns changed; rebuilding its metrics", stream_id)
        return stream_metrics_rebuild(stream_id=stream_id)
    summary_due_in = None
    if summarize and progress.summary_move_id != progress.last_applied_move_id:
        since = (
            timezone.now() - progress.summary_computed_at if progress.summary_computed_at else None
        )
        if throttle and since is not None and since < SUMMARY_MIN_INTERVAL:
            summary_due_in = (SUMMARY_MIN_INTERVAL - since).total_seconds()
        else:
            stream_metrics_summarize(stream_id=stream_id)
    return AdvanceResult(
        stream_id,
        applied,
        progress.last_applied_move_id,
        progress.watermark_move_id,
        summary_due_in=summary_due_in,
    )


@contextlib.contextmanager
def _snapshot() -> Iterator[None]:
    """A transaction whose reads all see one snapshot (on PostgreSQL, REPEATABLE
    READ): the document then reflects exactly the fold it names, even while another
    worker commits a fold in the middle of it. SQLite's transactions already do."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def stream_metrics_summarize(*, stream_id: int) -> bool:
    """Recompute the stream's metrics document from its aggregates and store it,
    unless a document of a later fold (or computed later) is stored already.

    Reads in one snapshot; writes StreamMetrics in a short transaction of its own, so
    a fold is never held up. Returns whether the document was stored.
    Side effects: writes StreamMetrics and the progress row's summary fields.
    """
    from metrics.selectors import MetricsQuery, stream_metrics_compute

    stream = ValueStream.objects.get(pk=stream_id)
    with _snapshot():
        through = (
            MetricsProgress.objects.filter(value_stream_id=stream_id)
            .values_list("last_applied_move_id", flat=True)
            .first()
        ) or 0
        now = timezone.now()
        data = stream_metrics_compute(MetricsQuery(stream=stream, now=now)).to_json()
    stored = _document_store(stream_id, through, now, data)
    # Counted from the end of the compute: a document slower than the interval would
    # otherwise never be deferred.
    MetricsProgress.objects.filter(value_stream_id=stream_id, summary_move_id__lte=through).update(
        summary_move_id=through, summary_computed_at=timezone.now()
    )
    return stored


def _document_store(stream_id: int, through: int, now: datetime, data: dict) -> bool:
    """Store the document only over an older one: through_move_id never goes back, and
    for the same fold the later computation wins. A stale or duplicate run is a no-op."""
    newer_or_same = Q(through_move_id__lt=through) | Q(
        through_move_id=through, computed_at__lte=now
    )

    def replace() -> int:
        return (
            StreamMetrics.objects.filter(value_stream_id=stream_id)
            .filter(newer_or_same)
            .update(through_move_id=through, computed_at=now, data=data)
        )

    with transaction.atomic():
        if replace():
            return True
        if StreamMetrics.objects.filter(value_stream_id=stream_id).exists():
            return False
        try:
            with transaction.atomic():
                StreamMetrics.objects.create(
                    value_stream_id=stream_id, through_move_id=through, computed_at=now, data=data
                )
            return True
        except IntegrityError:  # another run created it meanwhile
            return bool(replace())


def stream_metrics_rebuild(*, stream_id: int) -> AdvanceResult:
    """Drop a stream's aggregates and fold its whole move log again from the start,
    then recompute its metrics document.

    One transaction: readers see the old aggregates until it commits. Moves are read
    as tuples in batches by id; every card's state stays in memory; rows go out with
    COPY on PostgreSQL. Moves committed meanwhile are folded by the next advance
    (their runs find the progress row locked and retry), and moves that commit late
    below the last one read are found by the advance's late scan, as always.
    Locks: the stream's progress row (waits for a running fold to finish).
    Side effects: rewrites the aggregates, progress and StreamMetrics; ANALYZEs the
    aggregate tables on PostgreSQL.
    """
    MetricsProgress.objects.get_or_create(value_stream_id=stream_id)
    with transaction.atomic():
        progress = MetricsProgress.objects.select_for_update().get(value_stream_id=stream_id)
        for model in AGGREGATES:
            model.objects.filter(value_stream_id=stream_id).delete()
        fold = folding.Fold.for_stream(stream_id)
        fold.stored = False
        copy = connection.vendor == "postgresql"
        applied = cursor = 0
        while batch := folding.read_moves(stream_id, pk__gt=cursor, limit=REBUILD_BATCH_SIZE):
            applied += folding.fold_moves(fold, batch)
            fold.write_intervals(copy=copy)
            cursor = batch[-1][0]
        fold.write(rebuild=True)
        progress.watermark_move_id = 0
        progress.folded_layout = fold.layout
        progress.last_applied_move_id = cursor
        _settled_watermark(stream_id, progress)
        progress.applied_moves = applied
        progress.last_run_at = timezone.now()
        progress.summary_move_id = -1  # the document is recomputed below, whatever it says
        progress.save()
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # Fresh statistics, so that the document's plans fit the new row counts.
        with connection.cursor() as db:
            db.execute("ANALYZE " + ", ".join(model._meta.db_table for model in AGGREGATES))
    stream_metrics_summarize(stream_id=stream_id)
    return AdvanceResult(stream_id, applied, cursor, progress.watermark_move_id)


def streams_lagging() -> list[int]:
    """Streams whose log holds moves the fold has not applied, whose metrics document
    lags the fold (a deferred recompute was lost), or whose time zone or columns
    changed since they were folded (their next run rebuilds them): for the sweeper."""
    newest = dict(
        CardMove.objects.values("value_stream_id")
        .annotate(m=Max("id"))
        .values_list("value_stream_id", "m")
    )
    progress = {
        stream_id: (applied, summary, layout)
        for stream_id, applied, summary, layout in MetricsProgress.objects.values_list(
            "value_stream_id", "last_applied_move_id", "summary_move_id", "folded_layout"
        )
    }
    layouts = folding.stream_layouts()
    return sorted(
        stream_id
        for stream_id, last in newest.items()
        if progress.get(stream_id, (0, 0, ""))[0] < last
        or progress[stream_id][1] < last
        or progress[stream_id][2] != layouts.get(stream_id)
    )


def streams_with_stale_documents(*, now: datetime | None = None) -> list[int]:
    """Streams whose metrics document was last computed more than DOCUMENT_MAX_AGE
    before ``now`` (or never, though the fold has run): for the sweeper."""
    cutoff = (now or timezone.now()) - DOCUMENT_MAX_AGE
    return sorted(
        MetricsProgress.objects.filter(
            Q(summary_computed_at__lt=cutoff) | Q(summary_computed_at__isnull=True)
        ).values_list("value_stream_id", flat=True)
    )


def snapshot_week_start(*, now: datetime | None = None) -> date:
    """The Monday of the ISO week that ``now`` (by default the present) falls in, in the
    configured time zone (settings.TIME_ZONE): beat takes the snapshots at Monday 00:10
    local time, when in UTC it may still be Sunday."""
    return last_full_week(now) + timedelta(weeks=1)


def weekly_snapshot_take(*, stream_id: int, week_start: date | None = None) -> WeeklySnapshot:
    """Keep the stream's metrics document, recomputed now, as the snapshot of an ISO week
    (this week in the configured time zone by default). Taking it again for the same week
    replaces it; other weeks are left alone.

    The document is recomputed even when the fold has no new move: it also depends on
    the clock (window, ages) and on the board (blocked cards, WIP limits), and a stream
    without moves has none stored yet.
    Locks: the stream's progress row during the fold (stream_metrics_advance); the
    week's snapshot row while it is replaced.
    Raises: ValueError (``week_start`` is not a Monday), ValueStream.DoesNotExist.
    Side effects: advances the stream's aggregates and stores its StreamMetrics (see
    stream_metrics_advance, stream_metrics_summarize); writes the week's WeeklySnapshot.
    """
    if week_start is None:
        week_start = snapshot_week_start()
    elif week_start.weekday() != 0:
        raise ValueError(f"An ISO week starts on a Monday; {week_start} is a {week_start:%A}.")
    if not ValueStream.objects.filter(pk=stream_id).exists():
        raise ValueStream.DoesNotExist(f"No value stream {stream_id}.")
    stream_metrics_advance(stream_id=stream_id, summarize=False)
    stream_metrics_summarize(stream_id=stream_id)
    # The stored document: this one, or one of a later fold that a worker stored meanwhile.
    metrics = StreamMetrics.objects.get(value_stream_id=stream_id)
    snapshot, _ = WeeklySnapshot.objects.update_or_create(
        value_stream_id=stream_id,
        week_start=week_start,
        defaults={
            "through_move_id": metrics.through_move_id,
            "taken_at": timezone.now(),
            "data": metrics.data,
        },
    )
    return snapshot


# The weekly review's decisions and notes (metrics.models.ReviewEntry). Kept: recorded
# and withdrawn, never edited or deleted.


class ReviewEntryInvalid(InvalidInput):
    """A decision or note the review's rules refuse; ``field`` names the input at fault
    (week, kind, text or entry), so a form can show the message beside it."""

    code = "review_entry_invalid"


def review_entry_record(
    *,
    stream_id: int,
    week_start: date,
    kind: str,
    text: str,
    actor: Actor,
    at: datetime | None = None,
) -> ReviewEntry:
    """Record a decision or a note at the weekly review of the ISO week that starts on
    Monday ``week_start``, a full week that is over at ``at`` (default: now) in
    settings.TIME_ZONE. ``text`` is stripped of surrounding blanks (a CR LF line break
    counts as one character) and must then hold 1..REVIEW_ENTRY_MAX_LENGTH characters.

    Raises: PermissionRefused (the actor does not steer the stream: only admins, its
    manager and members with the manager role record), ReviewEntryInvalid (``field``
    week, kind or text), StreamNotFound.
    Side effects: writes one ReviewEntry and its audit row.
    """
    stream = stream_access(actor=actor, stream_id=stream_id)
    stream_steer_check(
        actor=actor, stream=stream, what="record the weekly review's decisions and notes"
    )
    now = at or timezone.now()
    latest = last_full_week(now)
    if week_start.weekday() != 0:
        raise ReviewEntryInvalid(
            f"An ISO week starts on a Monday; {week_start} is a {week_start:%A}.", field="week"
        )
    if week_start > latest:
        raise ReviewEntryInvalid(
            f"The week of {week_start.isoformat()} is not over yet: the review records full "
            f"weeks, the latest being the week of {latest.isoformat()}.",
            field="week",
        )
    if kind not in ReviewEntryKind.values:
        raise ReviewEntryInvalid("Record a decision or a note.", field="kind")
    # A browser sends a textarea's line breaks as CR LF: count each as one character.
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise ReviewEntryInvalid("Write the decision or note first: it is empty.", field="text")
    if len(text) > REVIEW_ENTRY_MAX_LENGTH:
        raise ReviewEntryInvalid(
            f"Keep it to {REVIEW_ENTRY_MAX_LENGTH:,} characters; this has {len(text):,}.",
            field="text",
        )
    with transaction.atomic():
        entry = ReviewEntry.objects.create(
            value_stream=stream,
            week_start=week_start,
            kind=kind,
            text=text,
            author_id=actor.user_id,
            created_at=now,
        )
        audit_record(
            actor=actor,
            action="review_entry.recorded",
            stream_id=stream.pk,
            target_type="review_entry",
            target_id=entry.pk,
            at=now,
        )
    return entry


def review_entry_withdraw(
    *, entry_id: int, actor: Actor, at: datetime | None = None
) -> ReviewEntry:
    """Withdraw a decision or note: it stays, marked with who withdrew it and when.

    Its author or anyone who steers its stream may withdraw it.
    Locks: the entry's row. Raises: PermissionRefused, ReviewEntryInvalid (``field``
    entry: withdrawn already), ReviewEntryNotFound (missing, or in a stream out of the
    actor's reach), Busy.
    Side effects: updates the entry's withdrawn_at and withdrawn_by; an audit row.
    """
    with locking_transaction():
        entry = (
            ReviewEntry.objects.select_for_update(no_key=True)
            .filter(pk=entry_id, value_stream__in=streams_visible_to(actor))
            .first()
        )
        if entry is None:
            raise ReviewEntryNotFound(data={"entry_id": entry_id})
        is_author = actor.user_id is not None and entry.author_id == actor.user_id
        if not is_author:
            stream_steer_check(
                actor=actor,
                stream=entry.value_stream,
                what="withdraw another person's decision or note",
            )
        if entry.withdrawn_at is not None:
            raise ReviewEntryInvalid("This entry was withdrawn already.", field="entry")
        entry.withdrawn_at = at or timezone.now()
        entry.withdrawn_by_id = actor.user_id
        entry.save(update_fields=["withdrawn_at", "withdrawn_by"])
        audit_record(
            actor=actor,
            action="review_entry.withdrawn",
            stream_id=entry.value_stream_id,
            target_type="review_entry",
            target_id=entry.pk,
            at=entry.withdrawn_at,
        )
    return entry


class ReviewEntryNotFound(NotFound):
    code = "review_entry_not_found"
    default_message = "No such decision or note in this value stream's review."


# The weekly digest e-mail (metrics.selectors.digest): members of a stream ask for it
# on its dashboard; the Monday snapshot's task sends it (metrics.tasks.weekly_digest).


def digest_subscription_set(*, actor: Actor, stream_id: int, subscribed: bool) -> bool:
    """Ask for the stream's weekly digest e-mail, or stop it. Idempotent. Returns whether
    the user now receives it: its manager always does (and needs no subscription).

    Any member of one of the stream's teams may ask for it; anyone may stop it.
    Raises: PermissionRefused (asking, and in none of the stream's teams; or not a
    person), StreamNotFound.
    Side effects: creates or deletes the person's DigestSubscription of the stream; an
    audit row when that changed anything.
    """
    user_id = actor.user_id
    if user_id is None:
        raise PermissionRefused("Only a person receives the weekly digest.")
    with transaction.atomic():
        stream = stream_access(actor=actor, stream_id=stream_id)
        is_manager = user_id == stream.manager_id
        if not subscribed:
            deleted, _ = DigestSubscription.objects.filter(
                user_id=user_id, value_stream=stream
            ).delete()
            changed = bool(deleted)
            receives = is_manager
        elif is_manager:
            return True
        else:
            if stream_members_check(stream_id=stream.pk, user_ids={user_id}):
                raise PermissionRefused(
                    "Only members of the value stream's teams can ask for its weekly digest.",
                    data={"stream_id": stream.pk},
                )
            _, changed = DigestSubscription.objects.get_or_create(
                user_id=user_id, value_stream=stream
            )
            receives = True
        if changed:
            audit_record(
                actor=actor,
                action="digest.subscribed" if subscribed else "digest.unsubscribed",
                stream_id=stream.pk,
                target_type="user",
                target_id=user_id,
            )
    return receives


def weekly_digest_send(*, stream_id: int, week_start: date) -> int:
    """E-mail the weekly digest of the stream's ISO week that starts on ``week_start`` (the
    reviewed week's Monday) to each recipient (selectors.digest.digest_recipients: the
    manager and the members who asked for it, each address once): one message each,
    with a text and an HTML part. Returns how many messages this call sent.

    A week in which nothing happened (selectors.digest.week_had_activity) sends and
    records nothing. Each message is recorded by a DigestDelivery row (unique per
    stream, week and address) created in the transaction that hands the message to the
    mail server: the row commits only once the server took the message, and an address
    with a row is skipped, so a retried or repeated run sends each address the week
    once. (The one gap: the server took it and the commit then failed; a retry sends it
    again.) An address the server refuses is logged and skipped; any other mail error
    is raised, the messages before it kept, so a retry sends only the rest.
    Locks: the new row only (a concurrent run for the same address waits on it, then
    skips it).
    Raises: ValueError (``week_start`` is not a Monday), ValueStream.DoesNotExist,
    smtplib.SMTPException and OSError (the mail server).
    Side effects: sends e-mail; writes DigestDelivery rows.
    """
    from metrics.selectors.digest import digest_recipients, weekly_digest_get

    if week_start.weekday() != 0:
        raise ValueError(f"An ISO week starts on a Monday; {week_start} is a {week_start:%A}.")
    stream = ValueStream.objects.get(pk=stream_id)
    digest = weekly_digest_get(stream, week_start)
    if digest is None:
        logger.info(
            "Stream %s: nothing happened in the week of %s; no digest", stream_id, week_start
        )
        return 0
    delivered = set(
        DigestDelivery.objects.filter(value_stream=stream, week_start=week_start).values_list(
            "address", flat=True
        )
    )
    pending = [r for r in digest_recipients(stream) if r.address not in delivered]
    if not pending:
        return 0
    sent = 0
    # One connection to the mail server for all the messages (settings.MAILERS).
    with mailers.default as mailer:
        for recipient in pending:
            context = {"digest": digest, "as_manager": recipient.user_id == stream.manager_id}
            message = EmailMultiAlternatives(
                subject=digest.subject,
                body=render_to_string("metrics/email/digest.txt", context),
                to=[recipient.address],
            )
            message.attach_alternative(
                render_to_string("metrics/email/digest.html", context), "text/html"
            )
            try:
                with transaction.atomic():
                    _, created = DigestDelivery.objects.get_or_create(
                        value_stream=stream,
                        week_start=week_start,
                        address=recipient.address,
                        defaults={"user_id": recipient.user_id, "sent_at": timezone.now()},
                    )
                    if not created:
                        continue
                    mailer.send_messages([message])
            except smtplib.SMTPRecipientsRefused:
                logger.warning(
                    "Digest of stream %s, week of %s: the mail server refused user %s's address",
                    stream_id,
                    week_start,
                    recipient.user_id,
                )
                continue
            sent += 1
    logger.info("Stream %s: digest of the week of %s sent to %d", stream_id, week_start, sent)
    return sent
