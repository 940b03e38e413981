"""The intake queue: prospects waiting for room in the first column of their cycle.

Pulled oldest first, through ``boards.services.card_create`` (the WIP rule, the move
log), by the system ("intake"), whenever the stream changes (intake.stream_changed)
and by the intake sweep. Two workers never pull the same prospect, and never out of
order: a pull holds the column's lock (as a move into it would) while it takes the
oldest prospect in line, skipping one that someone is removing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.db import transaction

from boards.errors import WipLimitReached
from boards.models import Column
from boards.services import EmailSuppressed, card_create
from intake.errors import IntakeItemNotFound
from intake.models import IntakeItem
from intake.services.enqueue import task_send
from vsm.access import stream_access, stream_steer_check
from vsm.actors import Actor, SystemActor
from vsm.audit import audit_record
from vsm.errors import Busy, DomainError
from vsm.transactions import locking_transaction

# Who pulls a waiting prospect in: the product, when room appears.
INTAKE_ACTOR = SystemActor("intake")
# Prospects pulled per run at most; a worker sends itself the rest.
PULL_BATCH = 200
PULL_TASK = "intake.pull"

# Streams this thread is pulling for: run in-process (tasks eager), each card a pull
# creates announces a change whose consumer would pull again, inside this pull.
_pulling = threading.local()


@dataclass(frozen=True)
class PullResult:
    """What one pull did: cards created, prospects held aside (refused for a reason of
    their own), dropped (their person asked to be forgotten), and whether more could be
    pulled now (the batch ran out before the room or the line did)."""

    created: int = 0
    held: int = 0
    dropped: int = 0
    more: bool = False


def intake_pull(*, stream_id: int, limit: int = PULL_BATCH) -> PullResult:
    """Pull the stream's waiting prospects into the first column of their cycles, oldest
    first, while the WIP limit has room: stops at the first WipLimitReached per cycle.

    A prospect refused for its own reason (its channel deactivated, its owner gone) is
    held aside with the reason, not retried until someone asks; one whose e-mail was
    suppressed meanwhile is dropped. A pull already running in this thread for the
    stream makes this one return at once.
    Locks: each time, the cycle's first column, then the oldest prospect in line
    (SKIP LOCKED). Raises: nothing of the board's (busy columns end the pull: the next
    change or the sweep pulls again).
    Side effects: cards (card_create, by the system "intake"); audit rows
    "intake_item.pulled", "intake_item.held", "intake_item.dropped".
    """
    active: set[int] = getattr(_pulling, "streams", set())
    _pulling.streams = active
    if stream_id in active:
        return PullResult()
    active.add(stream_id)
    created = held = dropped = 0
    try:
        cycle_ids = list(
            IntakeItem.objects.filter(value_stream_id=stream_id, held_code="")
            .order_by("cycle_id")
            .values_list("cycle_id", flat=True)
            .distinct()
        )
        for cycle_id in cycle_ids:
            while created + held + dropped < limit:
                outcome = _pull_one(cycle_id)
                if outcome == "created":
                    created += 1
                elif outcome == "held":
                    held += 1
                elif outcome == "dropped":
                    dropped += 1
                else:
                    break
        return PullResult(
            created=created, held=held, dropped=dropped, more=created + held + dropped >= limit
        )
    finally:
        active.discard(stream_id)


def _pull_one(cycle_id: int) -> str:
    """Pull the cycle's oldest prospect in line: "created", "held", "dropped", or why
    none was: "full", "empty", "busy"."""
    column_id = (
        Column.objects.filter(cycle_id=cycle_id).order_by("order").values_list("pk", flat=True)
    ).first()
    if column_id is None:
        return "full"  # a cycle without columns takes no card yet
    try:
        with locking_transaction():
            # The column first, as card_create locks it: pulls of one cycle take turns.
            list(Column.objects.select_for_update(no_key=True).filter(pk=column_id).values("pk"))
            item = (
                IntakeItem.objects.select_for_update(skip_locked=True)
                .filter(cycle_id=cycle_id, held_code="")
                .order_by("queued_at", "id")
                .first()
            )
            if item is None:
                return "empty"
            return _enter(item)
    except Busy:
        return "busy"


def _enter(item: IntakeItem) -> str:
    """Create the locked item's card and take it out of the queue, in the caller's
    transaction; or hold or drop it."""
    try:
        with transaction.atomic():
            result = card_create(
                cycle_id=item.cycle_id,
                stream_id=item.value_stream_id,
                actor=INTAKE_ACTOR,
                person_name=item.person_name,
                company=item.company,
                email=item.email,
                channel_id=item.channel_id,
                owner_id=item.owner_id,
                estimated_value=item.estimated_value,
                notes=item.notes,
            )
    except WipLimitReached:
        return "full"
    except Busy:
        raise
    except EmailSuppressed:
        _audit(item, "intake_item.dropped", data={"job_id": item.source_job_id})
        item.delete()
        return "dropped"
    except DomainError as error:
        item.held_code = error.code[:40]
        item.held_message = error.message[:300]
        item.save(update_fields=["held_code", "held_message"])
        _audit(item, "intake_item.held", data={"job_id": item.source_job_id})
        return "held"
    _audit(
        item,
        "intake_item.pulled",
        data={"card_id": result.card.pk, "job_id": item.source_job_id},
    )
    item.delete()
    return "created"


def _audit(
    item: IntakeItem, action: str, *, data: dict[str, int | None], actor: Actor = INTAKE_ACTOR
) -> None:
    audit_record(
        actor=actor,
        action=action,
        stream_id=item.value_stream_id,
        target_type="intake_item",
        target_id=item.pk,
        data=data,
    )


def _item_locked(*, item_id: int, stream_id: int, actor: Actor) -> IntakeItem:
    stream = stream_access(actor=actor, stream_id=stream_id)
    stream_steer_check(actor=actor, stream=stream, what="change the intake queue")
    item = (
        IntakeItem.objects.select_for_update(no_key=True)
        .filter(pk=item_id, value_stream_id=stream_id)
        .first()
    )
    if item is None:
        raise IntakeItemNotFound(data={"item_id": item_id})
    return item


def intake_item_remove(*, item_id: int, stream_id: int, actor: Actor) -> None:
    """Take a waiting prospect out of the intake queue for good (no card is made).

    Locks: the item (waiting while a pull holds it). Raises: StreamNotFound,
    PermissionRefused, IntakeItemNotFound (pulled or removed meanwhile), Busy.
    Side effects: an audit row "intake_item.removed".
    """
    with locking_transaction():
        item = _item_locked(item_id=item_id, stream_id=stream_id, actor=actor)
        _audit(item, "intake_item.removed", data={"job_id": item.source_job_id}, actor=actor)
        item.delete()


def intake_item_retry(*, item_id: int, stream_id: int, actor: Actor) -> IntakeItem:
    """Put a held prospect back in line (its channel was reactivated, say); it keeps its
    place by the time it was queued.

    Locks: the item. Raises: StreamNotFound, PermissionRefused, IntakeItemNotFound,
    Busy. Side effects: an audit row "intake_item.retried"; after commit, a pull.
    """
    with locking_transaction():
        item = _item_locked(item_id=item_id, stream_id=stream_id, actor=actor)
        if item.held_code:
            item.held_code = ""
            item.held_message = ""
            item.save(update_fields=["held_code", "held_message"])
            _audit(item, "intake_item.retried", data={"job_id": item.source_job_id}, actor=actor)
            task_send(PULL_TASK, stream_id)
    return item
