"""ApiToken's named constraints: what the database itself refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import ApiToken
from tests.constraints import violates

pytestmark = pytest.mark.django_db

DIGEST = "0" * 64


def _token(stream, **fields) -> ApiToken:
    values = {
        "value_stream": stream,
        "name": "Form",
        "scope": "intake",
        "prefix": "0123abcd",
        "secret_digest": DIGEST,
        "created_at": timezone.now(),
    } | fields
    return ApiToken.objects.create(**values)


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"name": ""}, "api_apitoken_name_not_blank"),
        ({"prefix": "XYZ"}, "api_apitoken_prefix_format"),
        ({"secret_digest": "secret"}, "api_apitoken_digest_format"),
        ({"scope": ""}, "api_apitoken_scope_known"),
        ({"scope": "admin"}, "api_apitoken_scope_known"),
        (
            {"revoked_at": timezone.now() - timedelta(days=1)},
            "api_apitoken_revoked_after_created",
        ),
    ],
)
def test_a_token_row_the_rules_refuse(stream, fields, constraint):
    with violates(ApiToken, constraint):
        _token(stream, **fields)


def test_two_tokens_never_share_a_prefix(stream):
    _token(stream)

    with violates(ApiToken, "api_apitoken_unique_prefix"):
        _token(stream, name="Other")
