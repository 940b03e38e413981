"""Token scopes: an ``intake`` token (a web form's, which may leak into a page) creates
prospects and reads itself, nothing else; a ``full`` token makes every call. A call
out of the token's scope is 403 ``token_scope`` in the API's error shape, nothing
changes, and the refusal is audited. The schema says each operation's scopes, from
the same attribute the permission enforces. Tokens made before scopes are ``full``."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from api.docs import api_schema
from api.models import ApiToken, TokenScope
from api.schema import SCOPES_EXTENSION
from api.services import IssuedToken, api_token_create
from boards.models import Card, CardMove, Outcome
from boards.services import card_close
from pdca.models import ControlPoint
from tests.api.conftest import bearer
from tests.support import COLLABORATION, TEST_SYSTEM, column_of, new_card, snapshot
from vsm.actors import ActorKind, UserActor
from vsm.models import AuditEntry

OPERATIONS = {
    operation["operationId"]: (path, method, operation)
    for path, item in api_schema()["paths"].items()
    for method, operation in item.items()
}
# What the issue asks of the intake scope: a web form's calls only.
INTAKE_OPERATIONS = {"prospect_create", "token_get"}


@pytest.fixture
def intake_issued(stream) -> IssuedToken:
    return api_token_create(
        stream_id=stream.pk,
        name="Website contact form",
        actor=UserActor(stream.manager),
        scope=TokenScope.INTAKE,
    )


def _request(client: APIClient, operation_id: str, stream, card: Card):
    """``operation_id`` called as a caller with a full token would, on real rows."""
    path, method, _ = OPERATIONS[operation_id]
    url = path.format(stream_id=stream.pk, card_id=card.pk, chart_key="throughput")
    control_point = ControlPoint.objects.get(
        from_cycle__value_stream=stream, from_cycle__name=COLLABORATION
    )
    bodies = {
        "prospect_create": {"company": "Acme"},
        "card_move": {
            "to_column_id": column_of(stream, COLLABORATION, "Information").pk,
            "version": card.version,
        },
        "card_handoff": {
            "control_point_id": control_point.pk,
            "criteria_met_ids": list(control_point.criteria.values_list("pk", flat=True)),
            "version": card.version,
        },
        "card_close": {"outcome": "won", "version": card.version},
        "card_reopen": {"version": card.version},
    }
    if method == "get":
        return client.get(url)
    return client.post(url, bodies[operation_id], format="json")


def test_the_schema_names_each_operations_scopes_as_the_issue_asks():
    for operation_id, (path, _method, operation) in OPERATIONS.items():
        expected = ["intake", "full"] if operation_id in INTAKE_OPERATIONS else ["full"]
        assert operation[SCOPES_EXTENSION] == expected, path
        said = " or ".join(f"`{scope}`" for scope in expected)
        assert operation["description"].endswith(f"Token scope: {said}."), path
        # A call some token may not make documents its 403; one every token may, none.
        assert ("403" in operation["responses"]) == (operation_id not in INTAKE_OPERATIONS)


@pytest.mark.django_db
@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_an_intake_token_makes_only_the_calls_of_its_scope(
    stream, manager, intake_issued, issued, operation_id
):
    card = new_card(stream, manager, person_name="Ada Keller")
    if operation_id == "card_reopen":  # a closed card, that a full token may reopen
        card = card_close(card_id=card.pk, outcome=Outcome.WON, actor=TEST_SYSTEM).card
    before = (snapshot(card), Card.objects.count(), CardMove.objects.count())

    answer = _request(bearer(intake_issued.secret), operation_id, stream, card)

    if operation_id in INTAKE_OPERATIONS:
        assert 200 <= answer.status_code < 300, answer.content
        return
    assert answer.status_code == 403, answer.content
    body = answer.json()
    assert body["code"] == "token_scope"
    assert set(body) == {"code", "message", "data"}
    assert "“intake”" in body["message"] and "“full”" in body["message"]
    assert body["data"] == {"token_id": intake_issued.token.pk}
    assert (snapshot(card), Card.objects.count(), CardMove.objects.count()) == before
    refusal = AuditEntry.objects.get(refused_code="token_scope")
    assert (refusal.actor_kind, refusal.actor_token_id) == (
        ActorKind.TOKEN,
        intake_issued.token.pk,
    )
    assert refusal.action.startswith("api.")
    # The same call with a full token goes through.
    full = _request(bearer(issued.secret), operation_id, stream, card)
    assert 200 <= full.status_code < 300, full.content


@pytest.mark.django_db
def test_an_intake_token_reads_its_own_scope_and_posts_a_prospect(stream, intake_issued):
    client = bearer(intake_issued.secret)

    me = client.get(reverse("api:token"))
    made = client.post(
        reverse("api:prospect-create", args=[stream.pk]), {"company": "Acme"}, format="json"
    )

    assert me.status_code == 200 and me.json()["scope"] == "intake"
    assert made.status_code == 201
    assert Card.objects.get(pk=made.json()["id"]).company == "Acme"


@pytest.mark.django_db
def test_no_token_is_still_401_before_any_scope(stream):
    response = APIClient().get(reverse("api:card-list", args=[stream.pk]))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_an_intake_token_asking_about_another_stream_is_refused_for_its_scope_first(
    other_stream, intake_issued
):
    """Its scope is refused before any stream is looked at: nothing is learnt of B."""
    response = bearer(intake_issued.secret).get(reverse("api:card-list", args=[other_stream.pk]))

    assert response.status_code == 403 and response.json()["code"] == "token_scope"


# The migration: tokens made before scopes could do everything; they keep that.


@pytest.mark.django_db(transaction=True)
def test_tokens_made_before_scopes_are_full_after_the_migration(stream):
    executor = MigrationExecutor(connection)
    before, after = [("api", "0001_api_token")], [("api", "0002_api_token_scope")]
    try:
        executor.migrate(before)
        old_state = executor.loader.project_state(before).apps
        OldToken = old_state.get_model("api", "ApiToken")
        OldToken.objects.create(
            value_stream_id=stream.pk,
            name="Made before scopes",
            prefix="0123abcd",
            secret_digest="0" * 64,
            created_at=timezone.now(),
        )
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes("api")
        )

    assert ApiToken.objects.get(prefix="0123abcd").scope == TokenScope.FULL
