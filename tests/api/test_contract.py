"""Contract test: schemathesis drives every operation of the OpenAPI schema through the
WSGI application (in process, loopback only), with inputs valid and invalid by the
schema. No answer may be a 5xx, every answer must be one the schema documents (status,
content type, body), and the board's invariants must hold afterwards (tests/invariants);
the other stream, whose token is never sent, must not have changed.

Generated ids would almost never name a row of the token's stream, so most cases are
pointed at real ones: the stream, its cards, columns, control points, criteria, lost
reasons, channels and cycles (and the card's current version), chosen from the
generated numbers; the rest keep what was generated (not found, invalid).

The cases come from schemathesis' strategies under hypothesis' own ``@given``:
schemathesis' pytest integration (``from_fixture`` / ``parametrize``) fails under
pytest 9 (it reads ``node._nodeid``, which pytest 9 removed).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.docs import api_schema
from boards.models import Card, Column, Outcome
from boards.services import card_close
from pdca.models import ControlPoint, Criterion, Cycle
from tests.factories import ChannelFactory
from tests.invariants import board_invariant_violations, column_loads
from tests.support import TEST_SYSTEM, column_of, new_card
from vsm.models import Channel, LostReason
from vsm.wsgi import application

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Per operation and generation mode (12 operations, 600 requests): about 15 s alone,
# 30 s on a 2-core machine shared with other work, plus the test database's set-up.
MAX_EXAMPLES = 25


@pytest.fixture
def wsgi_requests() -> Iterator[None]:
    """The WSGI handler's requests run inside the test's transaction: as Django's test
    client does, keep request_started/finished from closing the connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def contract_schema(wsgi_requests, settings):
    """The schema as the application serves it, its calls made to the application."""
    settings.VSM_API_RATE = "100000/min"  # the throttle has tests of its own
    return schemathesis.openapi.from_wsgi("/api/v1/schema/", application)


@pytest.fixture
def board(stream, other_stream, issued, other_issued, manager, member):
    """Two streams with cards in several columns and states; the token of the first."""
    channel = ChannelFactory(value_stream=stream, name="Web form")
    ChannelFactory(value_stream=stream, name="Old list", is_active=False)
    LostReason.objects.create(value_stream=stream, name="No budget")
    for index, column_name in enumerate(["Data", "Data", "Information", "Information", "Wisdom"]):
        new_card(stream, manager, column_name=column_name, person_name=f"Prospect {index}")
    closed = new_card(stream, manager, person_name="Closed one", channel_id=channel.pk)
    card_close(card_id=closed.pk, outcome=Outcome.WON, actor=TEST_SYSTEM)
    limited = column_of(stream, "Collaboration", "Wisdom")
    Column.objects.filter(pk=limited.pk).update(wip_limit=1)
    # Room for two more prospects: later ones wait in the intake queue (202).
    entry = column_of(stream, "Collaboration", "Data")
    Column.objects.filter(pk=entry.pk).update(wip_limit=4)
    for index in range(3):
        new_card(other_stream, other_stream.manager, person_name=f"Other {index}")
    return {
        "stream": stream,
        "secret": issued.secret,
        "loads": column_loads(),
        "other": _cards_of(other_stream),
    }


def _cards_of(stream) -> list[tuple]:
    return list(
        Card.objects.filter(value_stream=stream)
        .order_by("pk")
        .values_list("pk", "column_id", "position", "version", "outcome")
    )


class _Ids:
    """The real ids of the token's stream, to point generated cases at."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.columns = list(
            Column.objects.filter(cycle__value_stream=stream).values_list("pk", flat=True)
        )
        self.cycles = list(Cycle.objects.filter(value_stream=stream).values_list("pk", flat=True))
        self.control_points = list(
            ControlPoint.objects.filter(from_cycle__value_stream=stream).values_list(
                "pk", flat=True
            )
        )
        self.criteria = list(
            Criterion.objects.filter(control_point__from_cycle__value_stream=stream).values_list(
                "pk", flat=True
            )
        )
        self.lost_reasons = list(
            LostReason.objects.filter(value_stream=stream).values_list("pk", flat=True)
        )
        self.channels = list(
            Channel.objects.filter(value_stream=stream).values_list("pk", flat=True)
        )

        self.charts = ["throughput", "demand", "cumulative-flow", "aging", "pareto"] + [
            f"funnel-{cycle_id}" for cycle_id in self.cycles
        ]

    def criteria_of(self, control_point_id: int) -> list[int]:
        return list(
            Criterion.objects.filter(control_point_id=control_point_id).values_list("pk", flat=True)
        )

    def cards(self) -> list[int]:
        return list(Card.objects.filter(value_stream=self.stream).values_list("pk", flat=True))

    @staticmethod
    def pick(value: Any, choices: list[int]) -> Any:
        """A real id chosen by ``value`` (3 times in 4), else ``value`` as generated."""
        if not isinstance(value, int) or isinstance(value, bool) or not choices:
            return value
        if value % 4 == 3:
            return value
        return choices[value % len(choices)]


_BODY_IDS = {
    "to_column_id": "columns",
    "control_point_id": "control_points",
    "lost_reason_id": "lost_reasons",
    "channel_id": "channels",
    "cycle_id": "cycles",
}


def _point_at_real_rows(case: schemathesis.Case, ids: _Ids) -> None:
    path = case.path_parameters or {}
    if "stream_id" in path and _Ids.pick(path["stream_id"], [0]) == 0:
        path["stream_id"] = ids.stream.pk
    cards = ids.cards()
    if "card_id" in path:
        path["card_id"] = _Ids.pick(path["card_id"], cards)
    if "chart_key" in path and len(str(path["chart_key"])) % 4 != 3:
        path["chart_key"] = ids.charts[len(str(path["chart_key"])) % len(ids.charts)]
    body = case.body
    if not isinstance(body, dict):
        return
    for name, kind in _BODY_IDS.items():
        if name in body:
            body[name] = _Ids.pick(body[name], getattr(ids, kind))
    for name in ("after_card_id", "before_card_id"):
        if name in body:
            body[name] = _Ids.pick(body[name], cards)
    criteria = body.get("criteria_met_ids")
    if isinstance(criteria, list):
        control_point = body.get("control_point_id")
        if criteria and criteria[0] == 0 or not isinstance(control_point, int):
            body["criteria_met_ids"] = [_Ids.pick(v, ids.criteria) for v in criteria]
        else:  # every criterion of the control point: a handoff that may pass
            body["criteria_met_ids"] = ids.criteria_of(control_point)
    card_id = path.get("card_id")
    if (
        isinstance(card_id, int)
        and isinstance(body.get("version"), int)
        and body["version"] % 4 != 3
    ):
        version = Card.objects.filter(pk=card_id).values_list("version", flat=True).first()
        body["version"] = version or body["version"]


# The order the operations are run in: new prospects first, then the moves that act on
# them, closing last (a closed card refuses moves).
RUN_ORDER = [
    "token_get",
    "stream_get",
    "prospect_create",
    "cards_list",
    "card_get",
    "card_history",
    "card_move",
    "card_handoff",
    "card_close",
    "card_reopen",
    "metrics_get",
    "metrics_chart_get",
]


def _operation_ids() -> list[str]:
    """Every operation of the schema, in RUN_ORDER (any other after those)."""
    paths = api_schema().get("paths", {})
    ids = [operation["operationId"] for item in paths.values() for operation in item.values()]
    return sorted(ids, key=lambda name: (RUN_ORDER + ids).index(name))


def _fuzz(operation, mode: GenerationMode, *, call_one) -> Counter[int]:
    """Run ``call_one(case)`` on MAX_EXAMPLES cases of ``operation`` in ``mode``; the
    statuses answered."""
    statuses: Counter[int] = Counter()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        statuses[call_one(case)] += 1

    run()
    return statuses


@pytest.mark.django_db
def test_every_operation_keeps_its_contract(contract_schema, board, other_stream):
    """Each operation in turn, valid inputs then invalid ones, on one board whose state
    carries from one to the next (a move's card may be closed by a later call)."""
    ids = _Ids(board["stream"])
    headers = {"Authorization": f"Bearer {board['secret']}"}

    def call_one(case: schemathesis.Case) -> int:
        _point_at_real_rows(case, ids)
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        assert board_invariant_violations(before=board["loads"]) == []
        assert _cards_of(other_stream) == board["other"]
        return response.status_code

    failures: list[str] = []
    answered: dict[str, Counter[int]] = {}
    started = time.monotonic()
    for operation_id in _operation_ids():
        operation = contract_schema.find_operation_by_id(operation_id)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                answered[f"{operation_id} {mode.value}"] = _fuzz(operation, mode, call_one=call_one)
            except Exception as error:  # every operation is tried; all failures reported
                failures.append(f"{operation_id} ({mode.value}):\n{error}")
    elapsed = time.monotonic() - started
    summary = "\n".join(f"{key}: {dict(sorted(c.items()))}" for key, c in answered.items())
    assert not failures, "\n\n".join(failures) + "\n\n" + summary
    # Every operation answered, and the reads and the main writes succeeded at least once
    # (so the run reached past "not found" and "invalid").
    assert len(answered) == 2 * len(_operation_ids())
    for operation_id in ("stream_get", "cards_list", "card_get", "card_move", "prospect_create"):
        assert any(200 <= s < 300 for s in answered[f"{operation_id} positive"]), summary
    # Both answers of a new prospect: a card, and a place in the intake queue.
    assert {201, 202} <= set(answered["prospect_create positive"]), summary
    print(f"contract run: {elapsed:.1f} s\n{summary}")
