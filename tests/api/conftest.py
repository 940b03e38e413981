"""Fixtures of the API's tests: a token of the stream (and one of another stream), and
clients that send them. Each test's tokens are new, so their request counts start at
zero whatever the cache holds (api.throttling keys them by id and random prefix)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from api.services import IssuedToken, api_token_create
from vsm.actors import UserActor


def bearer(secret: str) -> APIClient:
    """A client that sends ``secret`` as its bearer token, and JSON bodies."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def issued(stream) -> IssuedToken:
    """A token of ``stream``, made by its manager."""
    return api_token_create(
        stream_id=stream.pk, name="Website form", actor=UserActor(stream.manager)
    )


@pytest.fixture
def api(issued) -> APIClient:
    return bearer(issued.secret)


@pytest.fixture
def other_issued(other_stream) -> IssuedToken:
    return api_token_create(
        stream_id=other_stream.pk, name="Clinic CRM", actor=UserActor(other_stream.manager)
    )
