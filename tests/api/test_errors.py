"""Every answer under /api/ is JSON in the one error shape, even a refusal made before
any view of the API runs (a NUL in the URL, a body or a query string over Django's
limits, a bad Host; a bug), while the site's own pages keep their HTML pages."""

from __future__ import annotations

import json

import pytest
from django.db import InterfaceError
from django.test import RequestFactory
from django.urls import get_resolver, reverse

from boards.models import Card
from tests.support import new_card

pytestmark = pytest.mark.django_db


def _api_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = response.json()
    assert set(body) >= {"code", "message", "data"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["data"], dict)
    return body


@pytest.mark.parametrize(
    "query",
    ["search=%00", "se%00arch=pumps", "column=1&search=a%00b"],
    ids=["value", "name", "among-others"],
)
def test_a_nul_in_the_card_lists_query_is_refused_in_the_api_shape(api, stream, query):
    response = api.get(f"{reverse('api:card-list', args=[stream.pk])}?{query}")

    body = _api_error(response, 400, "invalid_input")
    assert "NUL" in body["message"]


def test_a_nul_in_the_history_cursor_is_refused_in_the_api_shape(api, stream, manager):
    card = new_card(stream, manager)

    response = api.get(reverse("api:card-history", args=[stream.pk, card.pk]) + "?older=%00")

    _api_error(response, 400, "invalid_input")


def test_a_nul_in_an_api_path_is_refused_in_the_api_shape(api):
    _api_error(api.get("/api/v1/streams/1/cards/%00/"), 400, "invalid_input")


def test_a_body_over_the_upload_limit_is_refused_in_the_api_shape(api, stream, settings):
    body = json.dumps({"company": "Nordwerk", "notes": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE})

    response = api.post(
        reverse("api:prospect-create", args=[stream.pk]), body, content_type="application/json"
    )

    error = _api_error(response, 400, "invalid_input")
    assert error["data"] == {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
    assert not Card.objects.filter(company="Nordwerk").exists()


def test_a_body_nested_too_deep_to_read_is_refused_in_the_api_shape(api, stream):
    body = "[" * 3000 + "]" * 3000  # 6 KB, far under the size limit

    response = api.post(
        reverse("api:prospect-create", args=[stream.pk]), body, content_type="application/json"
    )

    error = _api_error(response, 400, "invalid_input")
    assert "nested" in error["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("person_name", "Ada\x1bKeller"), ("company", "Nord\x85werk"), ("notes", "a\x07b")],
)
def test_a_control_character_in_a_prospect_is_refused_in_the_api_shape(api, stream, field, value):
    prospect = {"person_name": "Ada Keller", "company": "Nordwerk", field: value}

    response = api.post(reverse("api:prospect-create", args=[stream.pk]), prospect, format="json")

    error = _api_error(response, 400, "invalid_move")
    assert error["field"] == field
    assert not Card.objects.filter(value_stream=stream).exists()


def test_too_many_query_parameters_are_refused_in_the_api_shape(api, stream, settings):
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    query = "&".join(f"p{number}=1" for number in range(limit + 1))

    response = api.get(f"{reverse('api:card-list', args=[stream.pk])}?{query}")

    error = _api_error(response, 400, "invalid_input")
    assert error["data"] == {"max_parameters": limit}


def test_a_host_not_allowed_is_refused_in_the_api_shape(api, stream):
    response = api.get(reverse("api:stream-detail", args=[stream.pk]), HTTP_HOST="evil.example")

    body = _api_error(response, 400, "invalid_input")
    assert "evil" not in body["message"]


def test_the_site_keeps_its_html_page_for_the_same_refusals(client, stream, manager):
    client.force_login(manager)

    for response in (
        client.get(f"/streams/{stream.slug}/board/?q=%00"),
        client.get(f"/streams/{stream.slug}/board/?" + "&".join(f"p{n}=1" for n in range(1001))),
    ):
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")
        assert b"That request could not be read" in response.content


def test_the_reference_page_refuses_other_methods_in_the_api_shape(api):
    response = api.post(reverse("api:docs"))

    _api_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def _handled_500(path: str, error: Exception):
    """The root URLconf's handler500 answering ``error`` raised while serving ``path``."""
    request = RequestFactory().get(path)
    try:
        raise error
    except type(error):
        return get_resolver().resolve_error_handler(500)(request)


def test_a_bug_under_the_api_is_a_500_in_the_api_shape():
    response = _handled_500("/api/v1/token/", RuntimeError("a bug"))

    body = json.loads(response.content)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert body["code"] == "server_error" and "bug" not in body["message"]


def test_a_database_out_of_reach_under_the_api_is_busy_in_the_api_shape():
    response = _handled_500("/api/v1/token/", InterfaceError("connection already closed"))

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert json.loads(response.content)["code"] == "busy"


def test_a_bug_on_the_site_keeps_the_sites_500_page():
    response = _handled_500("/streams/", RuntimeError("a bug"))

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
