"""Fixtures of the intake's tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.cache import cache
from django.db import transaction


@pytest.fixture
def committed(django_capture_on_commit_callbacks, eager_tasks):
    """``with committed():`` the block as one committed transaction whose after-commit
    work really runs, consumers of "stream changed" included (in-process): what the
    test's set-up left pending counts as committed already (as ``announced`` in
    tests/conftest.py has it), and no announcement counts as pending."""
    connection = transaction.get_connection()

    @contextmanager
    def commit() -> Iterator[None]:
        connection.run_on_commit.clear()
        cache.clear()
        with django_capture_on_commit_callbacks(execute=True):
            yield
        connection.run_on_commit.clear()

    return commit
