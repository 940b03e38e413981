"""The board's template filters."""

from __future__ import annotations

import datetime

import pytest
from django.template import Context, Template
from django.utils import timezone

from boards.templatetags.board_tags import local_minute


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Sao_Paulo"])
def test_local_minute_reads_as_the_date_filter_does(zone):
    moments = [
        datetime.datetime(2025, 1, 2, 3, 4, 59, tzinfo=datetime.UTC),
        datetime.datetime(2025, 7, 30, 23, 45, tzinfo=datetime.UTC),
    ]
    as_before = Template("{{ moment|date:'Y-m-d H:i' }}")
    with timezone.override(zone):
        for moment in moments:
            assert local_minute(moment) == as_before.render(Context({"moment": moment}))


def test_local_minute_of_nothing_is_empty():
    assert local_minute(None) == ""
