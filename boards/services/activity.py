"""A card's history besides its moves: comments, and the entries the card services
write when a card is edited, blocked or unblocked (``boards.models.CardActivity``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from django.contrib.auth import get_user_model
from django.db import transaction

from boards.errors import CardNotFound
from boards.models import COMMENT_MAX_LENGTH, ActivityKind, Card, CardActivity
from boards.services.clock import event_time
from vsm.access import streams_visible_to
from vsm.actors import Actor, actor_fields
from vsm.audit import audit_record
from vsm.errors import InvalidInput
from vsm.models import Channel


class FieldChange(TypedDict):
    """One changed field of an edit, as the person saw it: its label and its values
    as text ("" for empty)."""

    field: str
    old: str
    new: str


def card_comment_add(
    *, card_id: int, text: str, actor: Actor, at: datetime | None = None
) -> CardActivity:
    """Add a comment to a card's history: what the team learnt about the prospect.

    Anyone who may see the card's stream may comment (``vsm.access``: its manager, the
    members of its teams, admins, the system, its API tokens), on an open card or a
    closed one. ``text`` is stripped, its line breaks kept as LF (a browser posts
    CRLF); then 1 to ``COMMENT_MAX_LENGTH`` characters.
    Returns the new ``CardActivity`` (kind comment).
    Raises: InvalidInput (field "text": empty or too long), CardNotFound (missing, or
    in a stream the actor may not see), InvalidMove (a bad ``at``).
    Side effects: an audit row (the card, the comment's id and length). No "stream
    changed": nothing the board or the metrics show depends on comments, and the
    card's version stays, so a comment never makes someone's open edit stale.
    """
    at = event_time(at)
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise InvalidInput("Write something to comment.", field="text")
    if len(text) > COMMENT_MAX_LENGTH:
        raise InvalidInput(
            f"Keep a comment to {COMMENT_MAX_LENGTH:,} characters; this one has {len(text):,}.",
            data={"length": len(text), "limit": COMMENT_MAX_LENGTH},
            field="text",
        )
    # No lock: a comment changes nothing of the card.
    with transaction.atomic():
        # One query for the card and the access rule: missing and out of reach alike.
        visible = streams_visible_to(actor).values("pk")
        stream_id = (
            Card.objects.filter(pk=card_id, value_stream__in=visible)
            .order_by()
            .values_list("value_stream_id", flat=True)
            .first()
        )
        if stream_id is None:
            raise CardNotFound(data={"card_id": card_id})
        comment = CardActivity.objects.create(
            **actor_fields(actor),
            value_stream_id=stream_id,
            card_id=card_id,
            kind=ActivityKind.COMMENT,
            text=text,
            at=at,
        )
        audit_record(
            actor=actor,
            action="card.commented",
            stream_id=stream_id,
            target_type="card",
            target_id=card_id,
            data={"activity_id": comment.pk, "length": len(text)},
            at=at,
        )
    return comment


def _activity_record(
    *,
    card: Card,
    kind: ActivityKind,
    actor: Actor,
    at: datetime,
    text: str = "",
    changes: Sequence[FieldChange] = (),
) -> CardActivity:
    """Append an edit, block or unblock entry to the card's history, inside the card
    service's transaction (so it exists exactly when the change does)."""
    return CardActivity.objects.create(
        **actor_fields(actor),
        value_stream_id=card.value_stream_id,
        card_id=card.pk,
        kind=kind,
        text=text,
        changes=list(changes),
        at=at,
    )


# The labels of a card's editable facts as the card's form shows them (boards.forms.
# CardForm; a test holds the two together), keyed by the card's attribute.
FIELD_LABELS = {
    "person_name": "Person",
    "company": "Company",
    "email": "E-mail",
    "channel_id": "Channel",
    "owner_id": "Owner",
    "estimated_value": "Estimated value",
    "notes": "Notes",
}


def _edit_changes(before: dict[str, object], after: dict[str, object]) -> list[FieldChange]:
    """The facts that differ between ``before`` and ``after`` (card attribute -> value),
    in ``FIELD_LABELS``' order, each as text: a channel and an owner by name (one
    query each, only when they changed), an amount as the board shows it."""
    changed = [name for name in FIELD_LABELS if name in after and before[name] != after[name]]

    def ids(name: str) -> list[int]:
        return [value for value in (before[name], after[name]) if isinstance(value, int)]

    names: dict[str, dict[object, str]] = {}
    if "channel_id" in changed:
        channels = Channel.objects.filter(pk__in=ids("channel_id"))
        names["channel_id"] = dict(channels.values_list("pk", "name"))
    if "owner_id" in changed:
        names["owner_id"] = {
            user.pk: user.get_full_name() or user.get_username()
            for user in get_user_model().objects.filter(pk__in=ids("owner_id"))
        }

    def shown(name: str, value: object) -> str:
        if value is None or value == "":
            return ""
        if name in names:
            return names[name].get(value, "")
        if isinstance(value, Decimal):
            return _amount(value)
        return str(value)

    return [
        {
            "field": FIELD_LABELS[name],
            "old": shown(name, before[name]),
            "new": shown(name, after[name]),
        }
        for name in changed
    ]


def _amount(value: Decimal) -> str:
    """An amount as the board shows it: grouped, whole units unless it has cents."""
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"
