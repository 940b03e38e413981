"""Factories for every model, kept coherent with the domain.

A card's stream is its column's cycle's stream; both cycles of a control point belong
to one stream; positions are gapped and unique (a global sequence, so unique per column
too). Factories write rows directly: use them to arrange, and act through the services.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import factory
from django.conf import settings
from django.utils import timezone

from boards.models import Card, CardMove, Column, Handoff, KnowledgeLevel, MoveKind
from boards.services import POSITION_GAP
from pdca.models import (
    ControlPoint,
    Criterion,
    Cycle,
    Experiment,
    ExperimentStage,
    TargetedMetric,
)
from vsm.models import Channel, ChannelKind, Membership, Role, Team, ValueStream

# Every factory user's password (the login form in the browser tests types it).
PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = settings.AUTH_USER_MODEL
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(PASSWORD)


class ValueStreamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ValueStream

    name = factory.Sequence(lambda n: f"Market {n}")
    slug = factory.Sequence(lambda n: f"market-{n}")
    customer_market = "Mid-sized manufacturers"
    manager = factory.SubFactory(UserFactory)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    value_stream = factory.SubFactory(ValueStreamFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = Role.MEMBER


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel

    value_stream = factory.SubFactory(ValueStreamFactory)
    name = factory.Sequence(lambda n: f"Channel {n}")
    kind = ChannelKind.WEB_FORM


class CycleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cycle

    value_stream = factory.SubFactory(ValueStreamFactory)
    name = factory.Sequence(lambda n: f"Cycle {n}")
    order = factory.Sequence(lambda n: n + 1)


class ControlPointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ControlPoint

    from_cycle = factory.SubFactory(CycleFactory)
    to_cycle = factory.SubFactory(
        CycleFactory, value_stream=factory.SelfAttribute("..from_cycle.value_stream")
    )


class CriterionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Criterion

    control_point = factory.SubFactory(ControlPointFactory)
    text = factory.Sequence(lambda n: f"Criterion {n}")
    required = True
    order = factory.Sequence(lambda n: n + 1)


class ExperimentFactory(factory.django.DjangoModelFactory):
    """A plan on its cycle's stream: throughput of the cycle (no column, no channel),
    four weeks from this week's Monday. Arrange later stages with their fields (the
    named constraints say which each stage needs); act through pdca.services."""

    class Meta:
        model = Experiment

    cycle = factory.SubFactory(CycleFactory)
    team = factory.SubFactory(
        TeamFactory, value_stream=factory.SelfAttribute("..cycle.value_stream")
    )
    hypothesis = "We believe a weekly pipeline review will raise throughput"
    targeted_metric = TargetedMetric.THROUGHPUT
    window_start = factory.LazyFunction(
        lambda: timezone.localdate() - datetime.timedelta(days=timezone.localdate().weekday())
    )
    planned_weeks = 4
    target = Decimal("5.00")
    stage = ExperimentStage.PLAN


class ColumnFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Column

    cycle = factory.SubFactory(CycleFactory)
    name = factory.Sequence(lambda n: f"Column {n}")
    knowledge_level = KnowledgeLevel.DATA
    order = factory.Sequence(lambda n: n + 1)
    wip_limit = None


class CardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Card

    column = factory.SubFactory(ColumnFactory)
    value_stream = factory.SelfAttribute("column.cycle.value_stream")
    owning_team = factory.SelfAttribute("column.cycle.owning_team")
    position = factory.Sequence(lambda n: (n + 1) * POSITION_GAP)
    person_name = factory.Sequence(lambda n: f"Prospect {n}")
    company = "Acme Pumps"


class CardMoveFactory(factory.django.DjangoModelFactory):
    """By default the card's entry event into its current column."""

    class Meta:
        model = CardMove

    card = factory.SubFactory(CardFactory)
    value_stream = factory.SelfAttribute("card.value_stream")
    from_column = None
    to_column = factory.SelfAttribute("card.column")
    kind = MoveKind.ENTER


class HandoffFactory(factory.django.DjangoModelFactory):
    """A card passing from its column's cycle into a next cycle of the same stream."""

    class Meta:
        model = Handoff
        skip_postgeneration_save = True

    card = factory.SubFactory(CardFactory)
    control_point = factory.SubFactory(
        ControlPointFactory, from_cycle=factory.SelfAttribute("..card.column.cycle")
    )
    move = factory.SubFactory(
        CardMoveFactory,
        card=factory.SelfAttribute("..card"),
        kind=MoveKind.HANDOFF,
        from_column=factory.SelfAttribute("..card.column"),
        to_column=factory.SubFactory(
            ColumnFactory, cycle=factory.SelfAttribute("...control_point.to_cycle")
        ),
    )
    from_team = factory.SelfAttribute("card.owning_team")
    to_team = factory.SelfAttribute("control_point.receiving_team")

    @factory.post_generation
    def criteria_met(self, create: bool, extracted, **kwargs) -> None:
        if create and extracted:
            self.criteria_met.set(extracted)
