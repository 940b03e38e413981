"""No page or fragment with prospects' data is kept by a cache (vsm.privacy)."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.urls import reverse

from tests.support import logged_in, new_card
from vsm.privacy import NoStoreMiddleware

pytestmark = pytest.mark.django_db


def test_pages_fragments_and_refusals_are_never_stored_and_vary_on_htmx(stream, member):
    card = new_card(stream, member, email="ada@nordwerk.example")
    client = logged_in(member)
    answers = {
        "board page": client.get(reverse("boards:board", args=[stream.slug])),
        "board fragment": client.get(
            reverse("boards:board", args=[stream.slug]), headers={"HX-Request": "true"}
        ),
        "card page": client.get(reverse("boards:card-detail", args=[stream.slug, card.pk])),
        "archive": client.get(reverse("boards:archive", args=[stream.slug])),
        "dashboard": client.get(reverse("metrics:dashboard", args=[stream.slug])),
        "missing card": client.get(reverse("boards:card-detail", args=[stream.slug, 10**9])),
        "refused post": client.post(
            reverse("boards:card-move", args=[stream.slug, card.pk]), {"to_column": "x"}
        ),
        "login page": logged_in(member).get("/accounts/login/"),
    }

    for name, answer in answers.items():
        assert "no-store" in answer["Cache-Control"], name
        assert "HX-Request" in answer["Vary"], name
    assert answers["board fragment"].status_code == 200
    assert "ada@nordwerk.example" in answers["card page"].content.decode()


def test_an_answer_that_sets_its_own_caching_keeps_it(rf):
    cached = HttpResponse("public")
    cached["Cache-Control"] = "public, max-age=60"
    plain = HttpResponse("private")

    kept = NoStoreMiddleware(lambda request: cached)(rf.get("/"))
    added = NoStoreMiddleware(lambda request: plain)(rf.get("/"))

    assert kept["Cache-Control"] == "public, max-age=60"
    assert "no-store" in added["Cache-Control"] and "private" in added["Cache-Control"]
    assert kept["Vary"] == added["Vary"] == "HX-Request"
