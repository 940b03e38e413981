"""The OpenAPI schema (valid, every operation typed, its errors documented), the
reference page made from it (served under the site's CSP: no inline or outside
script), and the one error shape for every refusal, whatever raised it."""

from __future__ import annotations

import re
import sqlite3

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError
from django.urls import reverse
from drf_spectacular.validation import validate_schema
from rest_framework import exceptions
from rest_framework.test import APIClient

from api.docs import api_schema, prose
from api.exceptions import api_exception_handler
from api.serializers import ProspectCreateSerializer
from boards.errors import WipLimitReached
from vsm.errors import Busy, InvalidInput, PermissionRefused, Stale

ERROR_REF = "#/components/schemas/Error"
OPERATIONS = [
    (path, method, operation)
    for path, item in api_schema()["paths"].items()
    for method, operation in item.items()
]


def test_the_schema_is_valid_openapi():
    validate_schema(api_schema())


def test_every_operation_is_typed_and_documents_its_errors():
    assert len(OPERATIONS) == 12
    for path, method, operation in OPERATIONS:
        responses = operation["responses"]
        ok = [status for status in responses if status.startswith("2")]
        # A prospect is a card (201) or a place in the intake queue (202).
        expected_ok = ["201", "202"] if operation["operationId"] == "prospect_create" else ok[:1]
        assert ok == expected_ok and len(ok) >= 1, path
        for status in ok:
            assert "$ref" in responses[status]["content"]["application/json"]["schema"], path
        expected_errors = {"401", "429", "503"}
        if "{stream_id}" in path:
            expected_errors |= {"400", "404"}
        if method == "post":
            expected_errors |= {"409"}
            assert "$ref" in operation["requestBody"]["content"]["application/json"]["schema"]
        assert expected_errors <= set(responses), (path, method)
        for status in set(responses) - set(ok):
            assert responses[status]["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}
        assert operation["security"] == [{"ApiToken": []}], path
    scheme = api_schema()["components"]["securitySchemes"]["ApiToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_every_operation_describes_itself_for_a_caller():
    """Its own words, not a docstring about the code inherited from a base view."""
    for path, method, operation in OPERATIONS:
        description = operation.get("description", "")
        assert description, (method, path)
        assert "Middleware" not in description and "login" not in description, (method, path)


@pytest.mark.parametrize(
    "text",
    ["0", "1250", "1250.5", "1250.50", "9999999999.99", "0000000001", "1e5", "1E5", "+5", "-0"]
    + ["1.", ".5", " 12", "12 ", "1_000", "1,000", "\u0661\u0662", "1.234", "12345678901"]
    + ["NaN", "Infinity", ""],
)
def test_an_amount_in_a_string_is_taken_exactly_when_the_schemas_pattern_says(text):
    amount = api_schema()["components"]["schemas"]["ProspectCreateRequest"]["properties"][
        "estimated_value"
    ]
    pattern = next(each["pattern"] for each in amount["anyOf"] if each["type"] == "string")
    serializer = ProspectCreateSerializer(data={"company": "Acme", "estimated_value": text})

    assert serializer.is_valid() == bool(re.search(pattern, text)), serializer.errors
    if not serializer.is_valid():
        assert "e.g. 1250.50" in str(serializer.errors["estimated_value"])


def test_the_schema_is_served_as_yaml_and_json_without_a_token(client):
    assert client.get(reverse("api:schema")).content.startswith(b"openapi: 3.0.3")
    served = client.get(reverse("api:schema"), {"format": "json"}).json()
    assert served == api_schema()


@pytest.mark.django_db
def test_the_reference_page_lists_every_operation_under_the_csp(client):
    response = client.get(reverse("api:docs"))

    assert response.status_code == 200
    html = response.content.decode()
    for path, method, operation in OPERATIONS:
        assert f"<code>{method.upper()} {path}</code>" in html
        assert f'id="{operation["operationId"]}"' in html
    for name in api_schema()["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(re.search(r'\bsrc="/static/', tag) for tag in scripts), scripts
    assert not re.search(r"<script\b[^>]*>(?!</script>)", html)  # nothing inline
    assert not re.search(r'(src|href)="https?://', html)


def test_descriptions_are_escaped_with_their_code_spans_kept():
    assert prose("<b>`x`</b> and ``y``") == "&lt;b&gt;<code>x</code>&lt;/b&gt; and <code>y</code>"


# The one error shape.


def _answer(error: Exception):
    return api_exception_handler(error, {"request": None, "view": None})


def test_domain_errors_keep_their_code_status_and_data():
    full = _answer(WipLimitReached(column_id=4, column_name="Wisdom", count=5, limit=5))
    assert (full.status_code, full.data["code"]) == (409, "wip_limit_reached")
    assert full.data["data"] == {"column_id": 4, "count": 5, "limit": 5}
    assert _answer(Stale()).data["code"] == "stale"
    assert _answer(PermissionRefused()).status_code == 403
    invalid = _answer(InvalidInput("A name, please.", field="name"))
    assert invalid.data == {
        "code": "invalid",
        "message": "A name, please.",
        "data": {},
        "field": "name",
    }


@pytest.mark.django_db
def test_a_database_out_of_reach_is_busy_and_a_bug_is_not_hidden():
    lost = _answer(InterfaceError("connection already closed"))
    assert (lost.status_code, lost.data["code"]) == (503, Busy.code)
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorname = "SQLITE_BUSY"
    busy = OperationalError("database is locked")
    busy.__cause__ = locked
    assert _answer(busy).status_code == 503
    # Not the request's doing and not of the moment: a bug, left to the 500 handler.
    assert _answer(IntegrityError("duplicate key")) is None
    assert _answer(ValueError("bug")) is None


def test_rest_frameworks_refusals_take_the_same_shape():
    invalid = _answer(exceptions.ValidationError({"version": ["Required."]}))
    assert invalid.status_code == 400
    assert invalid.data == {
        "code": "invalid_input",
        "message": "Some input was not valid: version.",
        "data": {"fields": {"version": ["Required."]}},
    }
    throttled = _answer(exceptions.Throttled(wait=7))
    assert (throttled.status_code, throttled.data["code"]) == (429, "throttled")
    assert throttled["Retry-After"] == "7"
    assert _answer(exceptions.ParseError("bad JSON")).data["code"] == "invalid_input"
    assert _answer(exceptions.NotAuthenticated()).data["code"] == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nothing/"),
        ("post", "/api/v1/nothing/"),
        ("get", "/api/v1/token"),  # no slash: not redirected (a POST would lose its body)
        ("get", f"/api/v1/streams/{2**63}/cards/"),
        ("get", "/api/v1/streams/00000000000000000000001/"),
        ("post", "/api/v1/streams/1/cards/x/move/"),
    ],
)
def test_other_urls_under_the_api_are_a_json_404(method, path):
    response = getattr(APIClient(), method)(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
