"""The import itself: a job's rows, chunk by chunk, into cards, merges, the intake queue
or the report's rejections; in slices of bounded time, resumable after its cursor.

Exactly once per row: a row's outcome commits in the same transaction as the cursor
that passes it (a batch of rows, see ``_Runner``). The worker holds a lease on the
job, renewed with each commit, and a batch whose lease was taken over (the worker was
presumed dead) rolls back, so two workers never import the same row. A killed
worker's job is taken up after its lease runs out (intake.sweep) and goes on after its
cursor.

Cards enter through ``boards.services.card_create``, so the WIP rule holds: a row that
meets a full first column waits in the intake queue, and so does every row after it
while the queue of its cycle has prospects in line (a newcomer never jumps the line).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from itertools import batched
from typing import TypedDict

from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from boards.errors import InvalidMove, StaleBoard, WipLimitReached
from boards.models import Card
from boards.services import EmailSuppressed, card_create, card_update
from boards.services.privacy import email_digest
from intake.models import WORK_STATES, ImportJob, ImportRowError, ImportState, IntakeItem
from intake.services.enqueue import task_send
from intake.services.files import RowUnreadable, file_rows
from intake.services.jobs import _job_close, import_running
from intake.services.rows import (
    Prospect,
    RowCode,
    RowContext,
    StreamEmails,
    StreamLookups,
    Verdict,
    chunk_classify,
    seen_forget,
)
from pdca.errors import CycleNotFound
from vsm.access import stream_access, stream_steer_check
from vsm.actors import Actor, SystemActor, UserActor
from vsm.audit import audit_record
from vsm.errors import Busy, DomainError, NotFound, PermissionRefused
from vsm.models import ValueStream

logger = logging.getLogger(__name__)

# Rows classified together (one round of queries), and at most this many rows' outcomes
# wait for one commit.
CHUNK_ROWS = 500
# A worker's hold on a job; renewed with every commit, so it runs out only when the
# worker stopped working (killed, hung).
LEASE_SECONDS = 120
# Rows the report lists by number, with their code (no values: no personal data).
ROW_ERRORS_KEPT = 500
# A batch: at most this many rows, or this long (it holds the first column's lock
# from its first card to its commit); one commit, one "stream changed" per batch.
BATCH_ROWS = 100
BATCH_SECONDS = 0.25
# A row whose card is refused as busy (others hold its column long) is tried again this
# often, after a pause growing by this much; then the slice ends and the next one tries.
BUSY_ATTEMPTS = 3
BUSY_PAUSE_SECONDS = 0.2
PULL_TASK = "intake.pull"
# Who ends a job whose importer is gone, in the audit log.
_SYSTEM = SystemActor("import")

# What a refusal of card_create or card_update on a field says in the report.
_FIELD_CODES = {
    "owner": RowCode.UNKNOWN_OWNER,
    "channel": RowCode.INACTIVE_CHANNEL,
    "person_name": RowCode.NO_NAME,
    "notes": RowCode.TOO_LONG,
    "estimated_value": RowCode.BAD_VALUE,
}


@dataclass(frozen=True)
class SliceResult:
    """One slice of a job's work: ``claimed`` (False: another worker holds it, or it is
    over), ``rows`` done in this slice, the job's state after it, and ``more`` (rows
    remain: send the next slice; ``busy``: after a pause)."""

    job_id: int
    claimed: bool
    rows: int = 0
    state: str = ""
    more: bool = False
    busy: bool = False


class _LeaseLost(Exception):
    """Another worker took the job over, or someone cancelled it: this one stops, its
    last commit rolled back."""


class _Stop(Exception):
    """The job cannot go on (its cycle was deleted, its importer lost the stream)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass
class _Pending:
    """Outcomes of a batch's rows, written with its cursor when it commits."""

    last_row: int = 0
    created: int = 0
    merged: int = 0
    merged_unchanged: int = 0
    blank: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    errors: list[ImportRowError] = field(default_factory=list)
    items: list[IntakeItem] = field(default_factory=list)
    forget_rows: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.last_row > 0


def _claim(job_id: int) -> str | None:
    """Take the job's lease if it is free or ran out, and with it the stream's turn to
    import; the token, or None: another worker holds the job, it is over, or another
    job of its stream holds the turn (the job is then marked WAITING; it is sent again
    when that one ends, see ``import_next_send``, and by the sweep).

    One job of a stream imports at a time: each job classifies its rows against the
    stream's e-mails as they were when it started, so two at once would each miss the
    other's rows and import duplicates. Race-free across processes: the stream's row
    is locked first, so the claims of one stream's jobs take turns, and the database
    holds the rule too (intake_importjob_one_running_per_stream).
    Locks: the stream (no key), then the job.
    """
    now = timezone.now()
    with transaction.atomic():
        stream_id = (
            ImportJob.objects.filter(pk=job_id, state__in=WORK_STATES)
            .values_list("value_stream_id", flat=True)
            .first()
        )
        if stream_id is None:
            return None
        list(ValueStream.objects.select_for_update(no_key=True).filter(pk=stream_id).values("pk"))
        job = (
            ImportJob.objects.select_for_update(no_key=True)
            .filter(pk=job_id, state__in=WORK_STATES)
            .only("state", "lease_until")
            .first()
        )
        if job is None or (job.lease_until is not None and job.lease_until >= now):
            return None
        if job.state != ImportState.RUNNING and import_running(stream_id=stream_id) is not None:
            if job.state != ImportState.WAITING:
                ImportJob.objects.filter(pk=job_id).update(
                    state=ImportState.WAITING, updated_at=now
                )
            return None
        token = uuid.uuid4().hex
        ImportJob.objects.filter(pk=job_id).update(
            state=ImportState.RUNNING,
            lease_token=token,
            lease_until=now + timedelta(seconds=LEASE_SECONDS),
            updated_at=now,
            started_at=Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
        )
    return token


def _importer(job: ImportJob) -> Actor:
    """Who imports: the person who confirmed the job, as long as they steer its stream.
    Their name is on the cards' first move and the audit rows. Raises: _Stop."""
    user = None
    if job.created_by_id is not None:
        user = get_user_model().objects.filter(pk=job.created_by_id, is_active=True).first()
    if user is None:
        raise _Stop("The person who started this import can no longer sign in.")
    actor = UserActor(user)
    try:
        stream = stream_access(actor=actor, stream_id=job.value_stream_id)
        stream_steer_check(actor=actor, stream=stream)
    except (NotFound, PermissionRefused):
        raise _Stop("The person who started this import no longer manages the stream.") from None
    return actor


def import_run(*, job_id: int, seconds: float, max_rows: int | None = None) -> SliceResult:
    """Import the job's next rows, for about ``seconds`` (and at most ``max_rows``).

    Safe to run twice and at once: a second run finds the lease held and does nothing.
    Returns what the slice did. Raises what the database raises for a moment (the task
    retries it; the cursor keeps what was done); any other fault stops the job (failed,
    with the row it stopped after).
    Side effects: cards (card_create; card_update for merges), intake items, the job's
    counts; at the end an audit row "import.finished" (or "import.failed") and the
    file deleted. After commit of queued rows, a pull of the intake queue.
    """
    token = _claim(job_id)
    if token is None:
        job = ImportJob.objects.filter(pk=job_id).only("state").first()
        return SliceResult(job_id=job_id, claimed=False, state=job.state if job else "")
    job = ImportJob.objects.get(pk=job_id)
    runner = _Runner(job=job, token=token, seconds=seconds, max_rows=max_rows)
    try:
        finished = runner.run()
    except _LeaseLost:
        state = ImportJob.objects.filter(pk=job_id).values_list("state", flat=True).first()
        if state != ImportState.CANCELLED:
            logger.warning("Import %s was taken over by another worker", job_id)
        return SliceResult(job_id=job_id, claimed=True, rows=runner.rows, state=state or "")
    except _Stop as stop:
        _end(job_id=job_id, token=token, state=ImportState.FAILED, message=stop.message)
        return SliceResult(job_id=job_id, claimed=True, rows=runner.rows, state=ImportState.FAILED)
    except (OperationalError, InterfaceError):
        raise  # the database, for a moment: the task retries, the cursor keeps the rest
    except Exception:
        # A fault that would recur on every retry: the job stops where it is, said so.
        logger.exception("Import %s stopped by an unexpected error", job_id)
        cursor = ImportJob.objects.filter(pk=job_id).values_list("cursor", flat=True).first()
        message = (
            f"An unexpected error stopped the import after row {cursor}; the rows before "
            "it were imported."
        )
        _end(job_id=job_id, token=token, state=ImportState.FAILED, message=message)
        return SliceResult(job_id=job_id, claimed=True, rows=runner.rows, state=ImportState.FAILED)
    if finished:
        _end(job_id=job_id, token=token, state=ImportState.DONE)
        return SliceResult(job_id=job_id, claimed=True, rows=runner.rows, state=ImportState.DONE)
    _release(job_id=job_id, token=token)
    return SliceResult(
        job_id=job_id,
        claimed=True,
        rows=runner.rows,
        state=ImportState.RUNNING,
        more=True,
        busy=runner.busy,
    )


def _release(*, job_id: int, token: str) -> None:
    ImportJob.objects.filter(pk=job_id, lease_token=token).update(
        lease_token="", lease_until=None, updated_at=timezone.now()
    )


def _end(*, job_id: int, token: str, state: ImportState, message: str = "") -> None:
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update(no_key=True)
            .filter(pk=job_id, lease_token=token)
            .first()
        )
        if job is None:
            return
        _job_close(job, state=state, message=message)
        audit_record(
            actor=UserActor(job.created_by) if job.created_by else _SYSTEM,
            action="import.finished" if state == ImportState.DONE else "import.failed",
            stream_id=job.value_stream_id,
            target_type="import",
            target_id=job.pk,
            data={
                "created": job.created,
                "merged": job.merged,
                "queued": job.queued,
                "rejected": job.rejected,
                "rows": job.rows_done,
            },
        )


class _Runner:
    """One slice of one job's work, under its lease, in batches: each batch is one
    transaction holding its rows' outcomes (cards, merges, queued and rejected rows)
    and the cursor past them. A batch holds the first column's lock from its first
    card to its commit (card_create takes it), so it is kept short: BATCH_ROWS rows or
    BATCH_SECONDS, whichever comes first; a move into or out of the column waits that
    long at most."""

    def __init__(self, *, job: ImportJob, token: str, seconds: float, max_rows: int | None):
        self.job = job
        self.token = token
        self.deadline = time.monotonic() + seconds
        self.max_rows = max_rows
        self.rows = 0
        self.busy = False
        self.queue_mode = False

    def _slice_over(self) -> bool:
        return time.monotonic() >= self.deadline or (
            self.max_rows is not None and self.rows >= self.max_rows
        )

    def run(self) -> bool:
        """True when the file is done, False when the slice is over first."""
        job = self.job
        if job.cycle_id is None:
            raise _Stop("The cycle this import was to fill was deleted.")
        self.cycle_id: int = job.cycle_id
        self.actor = _importer(job)
        assert job.started_at is not None
        self.context = RowContext(
            job_id=job.pk,
            stream_id=job.value_stream_id,
            mapping=job.mapping,
            duplicates=job.duplicates,
            lookups=StreamLookups.build(job.value_stream_id),
            emails=StreamEmails.build(job.value_stream_id, before=job.started_at),
            phase=0,
            header=job.header,
        )
        rows = file_rows(
            job_id=job.pk, encoding=job.encoding, delimiter=job.delimiter, after_row=job.cursor
        )
        try:
            for chunk in batched(rows, CHUNK_ROWS):
                self.queue_mode = IntakeItem.objects.filter(
                    cycle_id=self.cycle_id, held_code=""
                ).exists()
                verdicts = chunk_classify(chunk, context=self.context)
                index = attempts = 0
                while index < len(verdicts):
                    done, busy = self._batch(verdicts, index)
                    attempts = attempts + 1 if busy and done == index else int(busy)
                    if attempts >= BUSY_ATTEMPTS:
                        self.busy = True
                        return False
                    if busy:
                        time.sleep(BUSY_PAUSE_SECONDS * attempts)
                    index = done
                    if index < len(verdicts) and self._slice_over():
                        return False
                if self._slice_over():
                    return False
        except RowUnreadable as error:
            raise _Stop(
                f"Row {error.row} cannot be read ({error.reason[:200]}); the rows before it "
                "were imported."
            ) from None
        return True

    def _batch(self, verdicts: list[Verdict], start: int) -> tuple[int, bool]:
        """Handle ``verdicts[start:]`` in one transaction, as many as a batch takes;
        returns the index of the first row left, and whether the board was busy (that
        row waits for the next batch). A stop commits the rows before it first."""
        pending = _Pending()
        index = start
        busy = False
        stop: _Stop | None = None
        with transaction.atomic():
            job = (
                ImportJob.objects.select_for_update(no_key=True)
                .filter(pk=self.job.pk, lease_token=self.token)
                .first()
            )
            if job is None:
                raise _LeaseLost
            began = time.monotonic()
            while (
                index < len(verdicts)
                and index - start < BATCH_ROWS
                and time.monotonic() - began < BATCH_SECONDS
            ):
                try:
                    self._handle(verdicts[index], pending)
                except Busy:
                    busy = True
                    break
                except _Stop as stopped:
                    stop = stopped
                    break
                index += 1
                self.rows += 1
                if self._slice_over():
                    break
            self._commit(job, pending)
        if stop is not None:
            raise stop
        return index, busy

    # Rows.

    def _handle(self, verdict: Verdict, pending: _Pending) -> None:
        if verdict.action == "blank":
            pending.blank += 1
            pending.last_row = verdict.row
        elif verdict.action == "reject":
            self._reject(pending, verdict.row, verdict.code, verdict.field, detail=verdict.detail)
        elif verdict.action == "merge":
            self._merge(verdict, pending)
        elif self.queue_mode:
            self._queue(verdict, pending)
        else:
            self._create(verdict, pending)

    def _reject(
        self,
        pending: _Pending,
        row: int,
        code: str,
        field_name: str,
        *,
        detail: str = "",
        forget: bool = False,
    ) -> None:
        pending.last_row = row
        pending.rejected[code] += 1
        pending.errors.append(
            ImportRowError(
                job_id=self.job.pk, row=row, code=code[:40], field=field_name, detail=detail
            )
        )
        if forget:
            pending.forget_rows.append(row)

    def _refused(self, verdict: Verdict, error: DomainError, pending: _Pending) -> None:
        """A row that card_create or card_update refused: rejected with a code, and its
        e-mail no longer counts as seen (a later row with it is no duplicate)."""
        if isinstance(error, CycleNotFound) or (isinstance(error, InvalidMove) and not error.field):
            raise _Stop(f"The cycle cannot take cards: {error.message}")
        if isinstance(error, EmailSuppressed):
            code: str = RowCode.SUPPRESSED_EMAIL
        else:
            code = _FIELD_CODES.get(error.field, error.code)
        self._reject(pending, verdict.row, code, error.field, forget=True)

    def _queue(self, verdict: Verdict, pending: _Pending) -> None:
        pending.last_row = verdict.row
        p = verdict.prospect
        pending.items.append(
            IntakeItem(
                value_stream_id=self.job.value_stream_id,
                cycle_id=self.cycle_id,
                source_job_id=self.job.pk,
                source_row=verdict.row,
                person_name=p.person_name,
                company=p.company,
                email=p.email,
                email_digest=p.digest,
                channel_id=p.channel_id,
                owner_id=p.owner_id,
                estimated_value=p.estimated_value,
                notes=p.notes,
            )
        )

    def _create(self, verdict: Verdict, pending: _Pending) -> None:
        """Create the row's card (its own savepoint, in the batch's transaction); a full
        column queues it and every later row. Raises: Busy (the batch ends before it)."""
        p = verdict.prospect
        try:
            card_create(
                cycle_id=self.cycle_id,
                stream_id=self.job.value_stream_id,
                actor=self.actor,
                person_name=p.person_name,
                company=p.company,
                email=p.email,
                channel_id=p.channel_id,
                owner_id=p.owner_id,
                estimated_value=p.estimated_value,
                notes=p.notes,
            )
        except WipLimitReached:
            self.queue_mode = True
            self._queue(verdict, pending)
            return
        except Busy:
            raise
        except DomainError as error:
            self._refused(verdict, error, pending)
            return
        pending.created += 1
        pending.last_row = verdict.row

    def _merge(self, verdict: Verdict, pending: _Pending) -> None:
        """Fill the duplicate's empty fields from the row: a card through card_update
        (an edit in its history), a waiting prospect in place. Raises: Busy."""
        if verdict.merge_item_id is not None:
            if self._merge_item(verdict, pending):
                return
            card_id = _card_by_email(self.job.value_stream_id, verdict.prospect)
        else:
            card_id = verdict.merge_card_id
        for _ in range(2):
            card = None
            if card_id is not None:
                card = Card.objects.filter(pk=card_id, erased_at__isnull=True).first()
            if card is None or not card.email:
                # Erased or gone since the check: the row is a newcomer after all.
                if self.queue_mode:
                    self._queue(verdict, pending)
                else:
                    self._create(verdict, pending)
                return
            fields, changed = _filled(card, verdict.prospect)
            try:
                if changed:
                    card_update(
                        card_id=card.pk,
                        actor=self.actor,
                        expected_version=card.version,
                        **fields,
                    )
            except StaleBoard:
                continue  # edited meanwhile: read it again
            except Busy:
                raise
            except DomainError as error:
                self._refused(verdict, error, pending)
                return
            pending.merged += 1
            pending.merged_unchanged += 0 if changed else 1
            pending.last_row = verdict.row
            return
        raise Busy()

    def _merge_item(self, verdict: Verdict, pending: _Pending) -> bool:
        """Fill a waiting prospect's empty fields from the row; False if it has left the
        queue meanwhile (it became a card: the row merges into that)."""
        p = verdict.prospect
        if verdict.merge_item_id is None:
            return False
        item = (
            IntakeItem.objects.select_for_update()
            .filter(pk=verdict.merge_item_id, value_stream_id=self.job.value_stream_id)
            .first()
        )
        if item is None:
            return False
        changed = False
        for name in ("person_name", "company", "notes"):
            if not getattr(item, name) and getattr(p, name):
                setattr(item, name, getattr(p, name))
                changed = True
        for name in ("channel_id", "owner_id"):
            if getattr(item, name) is None and getattr(p, name) is not None:
                setattr(item, name, getattr(p, name))
                changed = True
        if not item.estimated_value and p.estimated_value:
            item.estimated_value = p.estimated_value
            changed = True
        if changed:
            item.save()
            audit_record(
                actor=self.actor,
                action="intake_item.merged",
                stream_id=item.value_stream_id,
                target_type="intake_item",
                target_id=item.pk,
                data={"job_id": self.job.pk, "row": verdict.row},
            )
        pending.merged += 1
        pending.merged_unchanged += 0 if changed else 1
        pending.last_row = verdict.row
        return True

    # Commits.

    def _commit(self, job: ImportJob, pending: _Pending) -> None:
        """Write the batch's outcomes and the cursor past them, in its transaction."""
        if not pending:
            return
        if pending.items:
            IntakeItem.objects.bulk_create(pending.items)
            audit_record(
                actor=self.actor,
                action="intake_item.queued",
                stream_id=job.value_stream_id,
                target_type="import",
                target_id=job.pk,
                data={
                    "items": len(pending.items),
                    "cycle_id": job.cycle_id,
                    "first_row": pending.items[0].source_row,
                    "last_row": pending.items[-1].source_row,
                },
            )
            task_send(PULL_TASK, job.value_stream_id)
        if pending.forget_rows:
            seen_forget_rows(job_id=job.pk, rows=pending.forget_rows)
        now = timezone.now()
        changed = ["created", "merged", "merged_unchanged", "rejected", "queued",
                   "blank_rows", "cursor", "lease_until", "updated_at"]  # fmt: skip
        if pending.rejected:
            codes = Counter(job.rejected_by_code)
            codes.update(pending.rejected)
            job.rejected_by_code = dict(sorted(codes.items()))
            changed.append("rejected_by_code")
        if pending.errors:
            ImportRowError.objects.bulk_create(pending.errors)
        room = ROW_ERRORS_KEPT - len(job.row_errors)
        if pending.errors and room > 0:
            # Written only while it grows: an unchanged list would be rewritten whole.
            job.row_errors = job.row_errors + [
                {"row": error.row, "code": error.code, "field": error.field}
                for error in pending.errors[:room]
            ]
            changed.append("row_errors")
        job.created += pending.created
        job.merged += pending.merged
        job.merged_unchanged += pending.merged_unchanged
        job.rejected += sum(pending.rejected.values())
        job.queued += len(pending.items)
        job.blank_rows += pending.blank
        job.cursor = max(job.cursor, pending.last_row)
        job.lease_until = now + timedelta(seconds=LEASE_SECONDS)
        job.updated_at = now
        job.save(update_fields=changed)


def seen_forget_rows(*, job_id: int, rows: list[int]) -> None:
    """Forget the import's first rows per e-mail that are these rows."""
    for row in rows:
        seen_forget(job_id=job_id, phase=0, row=row)


class _CardFacts(TypedDict):
    person_name: str
    company: str
    email: str
    channel_id: int | None
    owner_id: int | None
    estimated_value: Decimal
    notes: str


def _filled(card: Card, prospect: Prospect) -> tuple[_CardFacts, bool]:
    """card_update's arguments that keep the card's facts and fill its empty ones from
    the row; and whether anything is filled."""
    value = Decimal(card.estimated_value) or prospect.estimated_value
    fields: _CardFacts = {
        "person_name": card.person_name or prospect.person_name,
        "company": card.company or prospect.company,
        "email": card.email,
        "channel_id": card.channel_id if card.channel_id is not None else prospect.channel_id,
        "owner_id": card.owner_id if card.owner_id is not None else prospect.owner_id,
        "estimated_value": value,
        "notes": card.notes or prospect.notes,
    }
    changed = (
        value != card.estimated_value
        or fields["person_name"] != card.person_name
        or fields["company"] != card.company
        or fields["channel_id"] != card.channel_id
        or fields["owner_id"] != card.owner_id
        or fields["notes"] != card.notes
    )
    return fields, changed


def _card_by_email(stream_id: int, prospect: Prospect) -> int | None:
    """The stream's card with the prospect's e-mail (canonical), open ones first: a
    waiting prospect the row was to merge into became this card meanwhile."""
    candidates = (
        Card.objects.filter(value_stream_id=stream_id, email__iexact=prospect.email.strip())
        .order_by("outcome", "-pk")
        .values_list("pk", "email", "outcome")
    )
    best: tuple[bool, int] | None = None
    for pk, email, outcome in candidates:
        if email_digest(email) == prospect.digest:
            rank = (outcome == "open", pk)
            best = rank if best is None or rank > best else best
    return best[1] if best else None
