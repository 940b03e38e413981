"""Who reaches the API: a bearer token of one stream, and that stream only.

No token, an unknown or revoked one: 401 in the API's error shape. A session (a person
logged in on the site) is no way in. A token of stream A asking about stream B, or
naming any of B's rows (a card, a column, a control point, a lost reason, a channel, a
cycle), is answered exactly as for a row that does not exist: 404, and nothing changes.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from api.models import ApiToken
from boards.models import Card, CardMove
from pdca.models import ControlPoint, Cycle
from tests.api.conftest import bearer
from tests.factories import ChannelFactory, UserFactory
from tests.support import logged_in, new_card, snapshot
from vsm.actors import ActorKind
from vsm.models import AuditEntry, LostReason

pytestmark = pytest.mark.django_db

MISSING = 987_654_321


@pytest.fixture
def rows(stream, other_stream, manager):
    """A card of each stream, and the other stream's rows a body can name."""
    other_manager = other_stream.manager
    mine = new_card(stream, manager, person_name="Mine")
    theirs = new_card(other_stream, other_manager, person_name="Theirs")
    return {
        "mine": mine,
        "theirs": theirs,
        "their_column": theirs.column,
        "their_cycle": Cycle.objects.filter(value_stream=other_stream).first(),
        "their_control_point": ControlPoint.objects.filter(
            from_cycle__value_stream=other_stream
        ).first(),
        "their_lost_reason": LostReason.objects.create(value_stream=other_stream, name="Price"),
        "their_channel": ChannelFactory(value_stream=other_stream),
    }


def _paths(stream_id: int, card_id: int) -> list[tuple[str, str, dict]]:
    """Every operation of the API, for a stream and a card: (method, path, body)."""
    card = f"/api/v1/streams/{stream_id}/cards/{card_id}"
    return [
        ("get", f"/api/v1/streams/{stream_id}/", {}),
        ("get", f"/api/v1/streams/{stream_id}/cards/", {}),
        ("post", f"/api/v1/streams/{stream_id}/prospects/", {"company": "Acme"}),
        ("get", f"{card}/", {}),
        ("get", f"{card}/history/", {}),
        ("post", f"{card}/move/", {"to_column_id": 1, "version": 1}),
        ("post", f"{card}/handoff/", {"control_point_id": 1, "version": 1}),
        ("post", f"{card}/close/", {"outcome": "won", "version": 1}),
        ("post", f"{card}/reopen/", {"version": 1}),
        ("get", f"/api/v1/streams/{stream_id}/metrics/", {}),
        ("get", f"/api/v1/streams/{stream_id}/metrics/charts/throughput/", {}),
    ]


def _call(client, method: str, path: str, body: dict):
    return getattr(client, method)(path, body, format="json") if body else client.get(path)


def test_without_a_token_every_operation_is_401(stream, rows):
    for method, path, body in _paths(stream.pk, rows["mine"].pk):
        response = _call(APIClient(), method, path, body)
        assert response.status_code == 401, path
        assert response.json()["code"] == "not_authenticated"
        assert set(response.json()) == {"code", "message", "data"}
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer vsm_00000000_" + "a" * 43,  # well formed, unknown
        "Bearer not-a-token",
        "Bearer ",
        "Bearer " + "x" * 5000,
        "bearer vsm_zz_\u0661\u0662",
    ],
)
def test_an_unknown_token_is_401(api, stream, header):
    api.credentials(HTTP_AUTHORIZATION=header)

    response = api.get(reverse("api:stream-detail", args=[stream.pk]))

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_a_token_with_a_wrong_secret_behind_a_real_prefix_is_401(stream, issued):
    forged = issued.secret[:-4] + ("AAAA" if not issued.secret.endswith("AAAA") else "BBBB")

    response = bearer(forged).get(reverse("api:stream-detail", args=[stream.pk]))

    assert response.status_code == 401
    ApiToken.objects.filter(pk=issued.token.pk).update(revoked_at=issued.token.created_at)
    assert bearer(issued.secret).get(reverse("api:token")).status_code == 401


def test_a_session_is_no_way_into_the_api(stream):
    admin = logged_in(UserFactory(is_superuser=True))

    response = admin.get(reverse("api:stream-detail", args=[stream.pk]))

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


def test_another_streams_rows_are_not_found_like_missing_ones(api, stream, other_stream, rows):
    """Each operation, with B's stream, then with A's stream and B's card: 404, with
    the code a missing row gets; nothing of B changed."""
    theirs_before = snapshot(rows["theirs"])
    moves_before = CardMove.objects.count()
    for (method, path, body), (_, missing_path, _) in zip(
        _paths(other_stream.pk, rows["theirs"].pk), _paths(MISSING, MISSING), strict=True
    ):
        answer = _call(api, method, path, body)
        missing = _call(api, method, missing_path, body)
        assert answer.status_code == 404, path
        assert answer.json()["code"] == missing.json()["code"] == "stream_not_found"
    for (method, path, body), (_, missing_path, _) in zip(
        _paths(stream.pk, rows["theirs"].pk)[3:9], _paths(stream.pk, MISSING)[3:9], strict=True
    ):
        answer = _call(api, method, path, body)
        missing = _call(api, method, missing_path, body)
        assert answer.status_code == 404, path
        assert answer.json()["code"] == missing.json()["code"] == "card_not_found"
        assert answer.json()["message"] == missing.json()["message"]
    assert snapshot(rows["theirs"]) == theirs_before
    assert CardMove.objects.count() == moves_before
    assert not Card.objects.filter(value_stream=other_stream, company="Acme").exists()
    # Every refusal is in the audit log, as the token's.
    refused = AuditEntry.objects.filter(refused_code__in=["stream_not_found", "card_not_found"])
    assert refused.count() == 2 * 11 + 2 * 6
    assert set(refused.values_list("actor_kind", flat=True)) == {ActorKind.TOKEN}


@pytest.mark.parametrize(
    ("operation", "field", "row", "code"),
    [
        ("move", "to_column_id", "their_column", "column_not_found"),
        ("handoff", "control_point_id", "their_control_point", "control_point_not_found"),
        ("close", "lost_reason_id", "their_lost_reason", "lost_reason_not_found"),
        ("prospects", "channel_id", "their_channel", "channel_not_found"),
        ("prospects", "cycle_id", "their_cycle", "cycle_not_found"),
    ],
)
def test_another_streams_ids_in_a_body_are_not_found_like_missing_ones(
    api, stream, rows, operation, field, row, code
):
    mine = rows["mine"]
    bodies = {
        "move": {"version": mine.version},
        "handoff": {"version": mine.version, "criteria_met_ids": []},
        "close": {"version": mine.version, "outcome": "lost"},
        "prospects": {"company": "Acme"},
    }
    if operation == "prospects":
        path = reverse("api:prospect-create", args=[stream.pk])
    else:
        path = reverse(f"api:card-{operation}", args=[stream.pk, mine.pk])
    before = snapshot(mine)
    cards_before = Card.objects.count()

    answer = api.post(path, {**bodies[operation], field: rows[row].pk}, format="json")
    missing = api.post(path, {**bodies[operation], field: MISSING}, format="json")

    assert answer.status_code == missing.status_code == 404
    assert answer.json()["code"] == missing.json()["code"] == code
    assert answer.json()["message"] == missing.json()["message"]
    assert str(rows[row].pk) not in answer.json()["message"]
    assert snapshot(mine) == before
    assert Card.objects.count() == cards_before


def test_filters_naming_another_streams_rows_match_nothing_as_missing_ones(api, stream, rows):
    url = reverse("api:card-list", args=[stream.pk])
    for name, row in (("column", "their_column"), ("cycle", "their_cycle")):
        theirs = api.get(url, {name: rows[row].pk})
        missing = api.get(url, {name: MISSING})
        assert theirs.status_code == missing.status_code == 200
        assert theirs.json()["results"] == missing.json()["results"] == []
    metrics = reverse("api:metrics", args=[stream.pk])
    theirs = api.get(metrics, {"cycle": rows["their_cycle"].pk})
    missing = api.get(metrics, {"cycle": MISSING})
    assert theirs.status_code == missing.status_code == 400
    assert theirs.json()["code"] == missing.json()["code"] == "invalid_input"
    assert list(theirs.json()["data"]["fields"]) == list(missing.json()["data"]["fields"])


def test_another_streams_id_in_a_query_filter_is_answered_as_a_missing_one(
    api, stream, rows, other_stream
):
    """As the README says: a card list filtered by it matches nothing, the metrics refuse
    it as not one of the stream's choices; either way exactly as for an id that names
    nothing, so that nothing is learnt of the other stream."""
    cards = reverse("api:card-list", args=[stream.pk])
    metrics = reverse("api:metrics", args=[stream.pk])
    theirs = {
        (cards, "column"): rows["their_column"].pk,
        (cards, "cycle"): rows["their_cycle"].pk,
        (cards, "channel"): rows["their_channel"].pk,
        (cards, "owner"): other_stream.manager.pk,
        (metrics, "cycle"): rows["their_cycle"].pk,
        (metrics, "channel"): rows["their_channel"].pk,
    }

    for (url, name), their_id in theirs.items():
        answer, missing = api.get(url, {name: their_id}), api.get(url, {name: MISSING})

        assert answer.status_code == missing.status_code, (url, name, answer.content)
        if url == cards:
            assert answer.status_code == 200
            assert answer.json()["results"] == missing.json()["results"] == []
        else:
            assert answer.status_code == 400
            assert answer.json()["code"] == missing.json()["code"] == "invalid_input"
            assert list(answer.json()["data"]["fields"]) == [name]
