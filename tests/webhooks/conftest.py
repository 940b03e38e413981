"""Fixtures of the webhook tests: a receiver on 127.0.0.1 (allowed here by the setting
that lets an installation send to its own network), and webhooks made through the
service."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from boards.models import MoveKind
from tests.support import TEST_SYSTEM
from tests.webhooks.receiver import Receiver
from vsm.models import ValueStream
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_endpoint_create


@pytest.fixture(autouse=True)
def in_process(eager_tasks):
    """Tasks run in the calling process even when the run names a real broker (CI):
    these are tests of what the tasks do; a test of the worker starts one."""


@pytest.fixture(autouse=True)
def internal_urls_allowed(settings):
    settings.VSM_WEBHOOK_ALLOW_INTERNAL_URLS = True
    settings.VSM_WEBHOOK_TIMEOUT_SECONDS = 2.0
    return settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def webhook(receiver) -> Callable[..., WebhookEndpoint]:
    """``webhook(stream, kinds=...)``: a webhook of the stream to the receiver, whose
    secret the receiver then accepts."""

    def make(
        stream: ValueStream, kinds=tuple(MoveKind.values), url: str | None = None
    ) -> WebhookEndpoint:
        created = webhook_endpoint_create(
            actor=TEST_SYSTEM, stream_id=stream.pk, url=url or receiver.url, event_types=kinds
        )
        receiver.secrets.append(created.secret)
        return created.endpoint

    return make
