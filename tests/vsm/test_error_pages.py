"""The site's error pages (templates/400.html, 403.html, 404.html, 500.html): with
DEBUG off, as in production, each is a page of the site, with its navigation and a way
back to the value streams, not the bare "Not Found" of Django's defaults.

A few test views (this module is their URLconf, on top of the site's) raise what the
400, 403 and 500 pages answer; the 404 is a real page's.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path, reverse

from tests.factories import MembershipFactory
from tests.support import experiment_planned, logged_in
from vsm import urls as site_urls
from vsm.models import Role, Team

pytestmark = pytest.mark.django_db


def refusing(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def unreadable(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("a forged header")


def crashing(request: HttpRequest) -> HttpResponse:
    raise ValueError("a programming error")


urlpatterns = [
    path("test/refusing/", refusing),
    path("test/unreadable/", unreadable),
    path("test/crashing/", crashing),
    *site_urls.urlpatterns,
]


def assert_a_page_of_the_site(response, *, logged_in: bool = True) -> None:
    text = response.content.decode()
    assert '<header class="topbar">' in text
    streams = reverse("boards:stream-list")
    assert f'<a class="brand" href="{streams}">' in text
    assert f'<a class="button" href="{streams}">Back to the value streams</a>' in text
    assert "css/vsm.css" in text
    assert ('aria-label="Account"' in text) == logged_in


@override_settings(DEBUG=False)
def test_a_missing_experiment_of_another_stream_is_the_site_s_404(stream, other_stream, leader):
    other_team = Team.objects.get(value_stream=other_stream)
    theirs = experiment_planned(other_stream.cycles.get(order=2), other_team)
    client = logged_in(leader)

    # Another stream's experiment through this stream's address, and through its own
    # stream's, which the leader is no member of: the same page.
    through_mine = client.get(reverse("metrics:experiment", args=[stream.slug, theirs.pk]))
    through_theirs = client.get(reverse("metrics:experiment", args=[other_stream.slug, theirs.pk]))

    for response in (through_mine, through_theirs):
        assert response.status_code == 404
        assert_a_page_of_the_site(response)
        assert "<h1>Nothing here</h1>" in response.content.decode()
        assert "Not Found" not in response.content.decode()


@override_settings(DEBUG=False)
def test_an_unknown_address_is_the_site_s_404_logged_out_too(client):
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert_a_page_of_the_site(response, logged_in=False)


@override_settings(DEBUG=False, ROOT_URLCONF=__name__)
def test_a_refusal_is_the_site_s_403(team):
    member = MembershipFactory(team=team, role=Role.MEMBER).user

    response = logged_in(member).get("/test/refusing/")

    assert response.status_code == 403
    assert_a_page_of_the_site(response)
    assert "Not yours to open" in response.content.decode()


@override_settings(DEBUG=False, ROOT_URLCONF=__name__)
def test_a_request_that_cannot_be_read_is_the_site_s_400(team):
    member = MembershipFactory(team=team, role=Role.MEMBER).user

    response = logged_in(member).get("/test/unreadable/")

    assert response.status_code == 400
    assert_a_page_of_the_site(response)
    assert "That request could not be read" in response.content.decode()


@override_settings(DEBUG=False, ROOT_URLCONF=__name__)
def test_a_crash_is_the_site_s_500_rendered_without_the_request(team):
    member = MembershipFactory(team=team, role=Role.MEMBER).user
    client = Client(raise_request_exception=False)
    client.force_login(member)

    response = client.get("/test/crashing/")

    # Django renders it without a request (nothing of the crashed one is trusted): no
    # user's menu, but the site's bar and a way back.
    assert response.status_code == 500
    assert_a_page_of_the_site(response, logged_in=False)
    assert "Something went wrong on our side" in response.content.decode()
