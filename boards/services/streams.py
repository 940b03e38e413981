"""A new value stream with its default team, cycles, columns and control points."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.text import slugify

from boards.models import Column, KnowledgeLevel
from pdca.models import ControlPoint, Criterion, Cycle
from vsm.actors import Actor
from vsm.audit import audit_record
from vsm.errors import InvalidInput
from vsm.models import Membership, Role, Team, ValueStream
from vsm.services import name_free_check

DEFAULT_CYCLES: Sequence[str] = ("Collaboration", "Sales/Buying", "Repeat/Upsell")
DEFAULT_COLUMNS: Sequence[tuple[str, str, int | None]] = (
    ("Data", KnowledgeLevel.DATA, None),
    ("Information", KnowledgeLevel.INFORMATION, 15),
    ("Knowledge", KnowledgeLevel.KNOWLEDGE, 10),
    ("Wisdom", KnowledgeLevel.WISDOM, 5),
)
DEFAULT_CRITERIA: dict[tuple[str, str], Sequence[tuple[str, bool]]] = {
    ("Collaboration", "Sales/Buying"): (
        ("Customer's problem understood", True),
        ("Our solution matches the problem", True),
        ("Decision maker identified", False),
    ),
    ("Sales/Buying", "Repeat/Upsell"): (
        ("First purchase made", True),
        ("Onboarding owner named", True),
        ("Success criteria agreed with the customer", False),
    ),
}


def value_stream_create(
    *,
    name: str,
    customer_market: str,
    manager: AbstractBaseUser,
    actor: Actor,
    slug: str = "",
    description: str = "",
    team_name: str = "",
) -> ValueStream:
    """Make a stream with its default team, cycles, columns and control points.

    Raises: InvalidInput (no name or market), NotUnique (the name or slug is taken).
    Side effects: the manager joins the default team as value stream manager; an
    audit row. No "stream changed": a new stream has no metrics yet, and its first
    move announces itself.
    """
    name, customer_market = name.strip(), customer_market.strip()
    if not name:
        raise InvalidInput("A value stream needs a name.", field="name")
    if not customer_market:
        raise InvalidInput("Say which customer market the stream serves.", field="customer_market")
    slug = slug.strip() or slugify(name)[:120]
    with transaction.atomic():
        streams = ValueStream.objects.all()
        name_free_check(streams, name=name, what="A value stream")
        name_free_check(streams, name=slug, what="The slug", field="slug", lookup="slug")
        stream = ValueStream.objects.create(
            name=name,
            slug=slug,
            customer_market=customer_market,
            description=description,
            manager_id=manager.pk,
        )
        team = Team.objects.create(value_stream=stream, name=team_name or f"{name} team")
        Membership.objects.create(user_id=manager.pk, team=team, role=Role.VALUE_STREAM_MANAGER)
        cycles = [
            Cycle.objects.create(
                value_stream=stream, name=cycle_name, order=order, owning_team=team
            )
            for order, cycle_name in enumerate(DEFAULT_CYCLES, start=1)
        ]
        Column.objects.bulk_create(
            Column(
                cycle=cycle,
                name=column_name,
                knowledge_level=level,
                order=order,
                wip_limit=wip_limit,
            )
            for cycle in cycles
            for order, (column_name, level, wip_limit) in enumerate(DEFAULT_COLUMNS, start=1)
        )
        for from_cycle, to_cycle in zip(cycles, cycles[1:], strict=False):
            control_point = ControlPoint.objects.create(
                from_cycle=from_cycle, to_cycle=to_cycle, receiving_team=team
            )
            criteria = DEFAULT_CRITERIA.get((from_cycle.name, to_cycle.name), ())
            Criterion.objects.bulk_create(
                Criterion(control_point=control_point, text=text, required=required, order=order)
                for order, (text, required) in enumerate(criteria, start=1)
            )
        audit_record(
            actor=actor,
            action="stream.created",
            stream_id=stream.pk,
            target_type="stream",
            target_id=stream.pk,
            data={"manager_id": manager.pk, "team_id": team.pk},
        )
    return stream
