"""Helpers shared by the tests: one place, imported, never copied.

Constants come from the product (the default cycles' names, the position gap), so a
test can never drift from what the product does.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.test import Client
from django.utils import timezone

from boards.models import Card, Column
from boards.services import DEFAULT_CYCLES, card_create, card_move
from pdca.models import Cycle, Experiment, ExperimentStage, SignalRule
from tests.factories import CardFactory, ExperimentFactory
from vsm.actors import Actor, SystemActor, TokenActor, UserActor
from vsm.models import ValueStream

# The cycles every new stream gets (boards.services.DEFAULT_CYCLES), by name.
COLLABORATION, SALES, REPEAT = DEFAULT_CYCLES

# The actor of test set-up that no person does (streams made for a test).
TEST_SYSTEM = SystemActor("test")


def as_actor(who: Any) -> Actor:
    """A typed actor for a service call: a user becomes a UserActor; an actor stays."""
    if isinstance(who, UserActor | TokenActor | SystemActor):
        return who
    return UserActor(who)


def logged_in(user) -> Client:
    """A test client logged in as ``user`` (no password, no login view)."""
    client = Client()
    client.force_login(user)
    return client


def column_of(stream: ValueStream, cycle_name: str, column_name: str) -> Column:
    return Column.objects.get(cycle__value_stream=stream, cycle__name=cycle_name, name=column_name)


def first_column(stream: ValueStream) -> Column:
    """Collaboration / Data, where prospects enter."""
    return Column.objects.get(cycle__value_stream=stream, cycle__order=1, order=1)


def fill(column: Column, count: int) -> list[Card]:
    """``count`` open cards in ``column``, written by the factory (no move log)."""
    return [CardFactory(column=column) for _ in range(count)]


def new_card(stream: ValueStream, actor, *, column_name: str = "Data", **fields) -> Card:
    """A card entered through the service into Collaboration, then moved to a column."""
    fields.setdefault("person_name", "Ada Keller")
    fields.setdefault("company", "Nordwerk Pumps")
    card = card_create(
        cycle_id=column_of(stream, COLLABORATION, "Data").cycle_id, actor=as_actor(actor), **fields
    ).card
    if column_name != "Data":
        card_move(
            card_id=card.pk,
            to_column_id=column_of(stream, COLLABORATION, column_name).pk,
            actor=as_actor(actor),
        )
    card.refresh_from_db()
    return card


def snapshot(card: Card) -> tuple:
    """What a refused action must leave untouched, read from the database."""
    row = Card.objects.get(pk=card.pk)
    return (row.column_id, row.position, row.version, row.outcome, row.owning_team_id)


def this_monday() -> datetime.date:
    """The Monday of this week (settings.TIME_ZONE): a window open now."""
    today = timezone.localdate()
    return today - datetime.timedelta(days=today.weekday())


# An experiment at each stage, written by the factory (the stage's fields, as its named
# constraints ask): for pages and reads. Acts go through the services.
BASELINE_WEEKLY = [2, 3, 4, 3, 2, 4]


def experiment_planned(cycle: Cycle, team, **fields) -> Experiment:
    """A plan on ``cycle`` by ``team``: throughput, four weeks from this Monday."""
    return ExperimentFactory(cycle=cycle, team=team, **fields)


def experiment_running(cycle: Cycle, team, **fields) -> Experiment:
    """Started yesterday on a baseline of 3 (30 cards), not stopped."""
    fields = {
        "stage": ExperimentStage.DO,
        "started_at": timezone.now() - datetime.timedelta(days=1),
        "baseline": Decimal("3"),
        "baseline_cards": 30,
        "baseline_weekly": BASELINE_WEEKLY,
    } | fields
    return experiment_planned(cycle, team, **fields)


def experiment_stopped(cycle: Cycle, team, **fields) -> Experiment:
    """Its window from four weeks ago, started then, stopped early after 15 days."""
    started = timezone.now() - datetime.timedelta(days=20)
    fields = {
        "window_start": this_monday() - datetime.timedelta(weeks=4),
        "started_at": started,
        "stopped_at": started + datetime.timedelta(days=15),
        "stopped_early": True,
    } | fields
    return experiment_running(cycle, team, **fields)


def experiment_checked(cycle: Cycle, team, **fields) -> Experiment:
    """Stopped, then checked: 9 per week on 18 cards, a signal above the upper limit."""
    fields = {
        "stage": ExperimentStage.CHECK,
        "measured_value": Decimal("9"),
        "measured_cards": 18,
        "measured_weekly": [9, 9],
        "signal": True,
        "signal_rule": SignalRule.BEYOND_UPPER_LIMIT,
        "checked_at": timezone.now(),
    } | fields
    return experiment_stopped(cycle, team, **fields)
