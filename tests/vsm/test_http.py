"""The browser's way in: one translation of domain errors into answers (vsm.http).

A few test views (this module is their URLconf, on top of the site's) raise each kind
of refusal; the board's own endpoints show the same answers for real requests.
"""

from __future__ import annotations

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.urls import path, reverse
from django_htmx.middleware import HtmxDetails

from boards.models import Card, CardMove, Column
from boards.services import DEFAULT_CYCLES
from tests.factories import CardFactory
from tests.pages import element
from vsm import urls as site_urls
from vsm.access import StreamNotFound
from vsm.actors import ActorKind
from vsm.errors import (
    Busy,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionRefused,
)
from vsm.http import form_status, refusals_shown_on, respond_to_refusals
from vsm.models import AuditEntry, ValueStream

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
REFUSALS: dict[str, DomainError] = {
    "invalid": InvalidInput("That date could not be read.", field="week"),
    "conflict": Conflict("That column is full.", data={"column_id": 3}),
    "busy": Busy(),
    "permission": PermissionRefused("Only the manager may do that.", data={"stream_id": 77}),
    "not-found": NotFound("No such thing here.", data={"card_id": 5}),
}
PAGE_ANSWER = "answered by the page"


def refusing(request: HttpRequest, kind: str) -> HttpResponse:
    raise REFUSALS[kind]


def answering(request: HttpRequest, kind: str) -> HttpResponse:
    """A page that answers refusals itself (as the board re-renders its columns)."""
    respond_to_refusals(request, lambda error: HttpResponse(f"{PAGE_ANSWER}: {error.code}"))
    raise REFUSALS[kind]


def crashing(request: HttpRequest) -> HttpResponse:
    raise ValueError("a programming error")


urlpatterns = [
    path("test/refusing/<str:kind>/", refusing, name="refusing"),
    path("test/answering/<str:kind>/", answering, name="answering"),
    path("test/crashing/", crashing, name="crashing"),
    *site_urls.urlpatterns,
]
with_test_views = pytest.mark.urls(__name__)


@pytest.fixture
def client_of(client):
    def log_in(user):
        client.force_login(user)
        return client

    return log_in


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def refusals() -> list[tuple]:
    return list(
        AuditEntry.objects.exclude(refused_code="").values_list(
            "action", "refused_code", "stream_id", "actor_kind", "actor_id"
        )
    )


def first_columns(stream: ValueStream) -> list[Column]:
    return list(
        Column.objects.filter(cycle__value_stream=stream, cycle__name=DEFAULT_CYCLES[0]).order_by(
            "order"
        )
    )


# The default answers -------------------------------------------------------------------


@with_test_views
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("kind", ["invalid", "conflict", "busy", "permission"])
def test_a_refused_htmx_request_gets_200_a_toast_and_no_swap(client_of, user, kind, method):
    response = getattr(client_of(user), method)(f"/test/refusing/{kind}/", headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Reswap"] == "none"
    toasts = element(response.content, "toasts")
    assert toasts["hx-swap-oob"] == "beforeend"
    assert REFUSALS[kind].message.encode() in response.content
    assert b'class="toast toast-error" role="alert"' in response.content
    assert b"<html" not in response.content


@with_test_views
@pytest.mark.parametrize("kind", ["invalid", "conflict", "busy", "permission"])
def test_a_plain_post_refusal_goes_back_to_the_page_it_came_from(client_of, user, kind):
    referer = "http://testserver/streams/pumps/board/?q=acme"

    response = client_of(user).post(f"/test/refusing/{kind}/", headers={"Referer": referer})

    assert response.status_code == 303
    assert response["Location"] == referer
    assert messages_of(response) == [REFUSALS[kind].message]


@with_test_views
@pytest.mark.parametrize(
    "referer",
    ["https://attacker.example/phish", "//attacker.example/", "javascript:alert(1)", None],
)
def test_a_plain_post_refusal_from_elsewhere_goes_home(client_of, user, referer):
    headers = {"Referer": referer} if referer else {}

    response = client_of(user).post("/test/refusing/conflict/", headers=headers)

    assert response.status_code == 303
    assert response["Location"] == reverse("home") == "/"
    assert messages_of(response) == ["That column is full."]


@with_test_views
@pytest.mark.parametrize("kind", ["invalid", "conflict", "busy", "permission"])
def test_a_refused_page_read_says_what_was_refused_with_its_status(client_of, user, kind):
    response = client_of(user).get(f"/test/refusing/{kind}/")

    error = REFUSALS[kind]
    assert response.status_code == error.http_status
    assert "refused.html" in [template.name for template in response.templates]
    assert error.message.encode() in response.content


@with_test_views
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["plain", "htmx"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_not_found_is_the_404_page(client_of, user, method, headers):
    response = getattr(client_of(user), method)("/test/refusing/not-found/", headers=headers)
    page = client_of(user).get("/no/such/page/")

    assert response.status_code == page.status_code == 404
    assert response.content == page.content
    assert "refused.html" not in [template.name for template in response.templates]
    assert "HX-Reswap" not in response


@with_test_views
@pytest.mark.parametrize("kind", ["invalid", "conflict", "busy", "permission"])
def test_a_page_s_own_responder_answers_its_refusals(client_of, user, kind):
    response = client_of(user).post(f"/test/answering/{kind}/", headers=HTMX)

    assert response.status_code == 200
    assert response.content.decode() == f"{PAGE_ANSWER}: {REFUSALS[kind].code}"


@with_test_views
def test_a_page_s_own_responder_does_not_answer_not_found(client_of, user):
    response = client_of(user).post("/test/answering/not-found/", headers=HTMX)

    assert response.status_code == 404
    assert PAGE_ANSWER.encode() not in response.content


@with_test_views
def test_an_error_that_is_no_refusal_is_left_to_django(client_of, user):
    with pytest.raises(ValueError, match="a programming error"):
        client_of(user).get("/test/crashing/")


# Refused authorizations in the audit log ------------------------------------------------


@with_test_views
@pytest.mark.parametrize(
    ("kind", "code", "stream_id"),
    [("permission", "permission_refused", 77), ("not-found", "not_found", None)],
)
def test_a_refused_authorization_is_audited_once(client_of, user, kind, code, stream_id):
    client_of(user).post(f"/test/refusing/{kind}/", headers=HTMX)

    assert refusals() == [("http.refusing", code, stream_id, ActorKind.USER, user.pk)]
    entry = AuditEntry.objects.get(refused_code=code)
    assert entry.data == REFUSALS[kind].data


@with_test_views
@pytest.mark.parametrize("kind", ["invalid", "conflict", "busy"])
def test_a_refusal_that_is_no_authorization_is_not_audited(client_of, user, kind):
    client_of(user).post(f"/test/refusing/{kind}/", headers=HTMX)

    assert not AuditEntry.objects.exists()


@with_test_views
def test_a_refusal_answered_by_the_page_is_audited_too(client_of, user):
    client_of(user).post("/test/answering/permission/", headers=HTMX)

    assert refusals() == [("http.answering", "permission_refused", 77, ActorKind.USER, user.pk)]


def test_missing_and_forbidden_streams_are_the_same_404_and_both_audited(client_of, stream, user):
    client = client_of(user)

    forbidden = client.get(reverse("boards:board", args=[stream.slug]))
    missing = client.get(reverse("boards:board", args=["no-such-stream"]))

    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.content == missing.content
    assert refusals() == [
        ("http.board", StreamNotFound.code, None, ActorKind.USER, user.pk),
        ("http.board", StreamNotFound.code, None, ActorKind.USER, user.pk),
    ]


@pytest.fixture
def full_last_column(stream):
    """The first cycle's last column at a WIP limit of 1, and a card before it."""
    *_, knowledge, wisdom = first_columns(stream)
    Column.objects.filter(pk=wisdom.pk).update(wip_limit=1)
    CardFactory(column=wisdom)
    return CardFactory(column=knowledge), wisdom


@pytest.mark.parametrize("headers", [HTMX, {}], ids=["htmx", "plain"])
def test_a_member_s_wip_override_through_the_move_view_is_refused_and_audited(
    client_of, stream, member, full_last_column, headers
):
    card, wisdom = full_last_column
    moves_before = CardMove.objects.count()

    response = client_of(member).post(
        reverse("boards:card-move", args=[stream.slug, card.pk]),
        {"to_column": wisdom.pk, "override_reason": "I insist"},
        headers=headers,
    )

    refused = "Only an admin or the value stream manager may override the WIP limit of Wisdom"
    if headers:
        assert response.status_code == 200
        assert refused.encode() in response.content
    else:
        assert response.status_code == 302
        assert any(message.startswith(refused) for message in messages_of(response))
    assert Card.objects.get(pk=card.pk).column_id != wisdom.pk
    assert CardMove.objects.count() == moves_before
    assert refusals() == [
        ("http.card_move", "permission_refused", stream.pk, ActorKind.USER, member.pk)
    ]
    assert not AuditEntry.objects.filter(action="card.moved").exists()


def test_a_member_s_wip_limit_change_is_refused_and_audited(client_of, stream, member):
    information = first_columns(stream)[1]

    response = client_of(member).post(
        reverse("boards:column-wip-limit", args=[stream.slug, information.pk]),
        {"wip_limit": "2"},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert b"Only an admin or the value stream manager may change WIP limits." in response.content
    assert Column.objects.get(pk=information.pk).wip_limit == information.wip_limit
    assert refusals() == [
        ("http.column_wip_limit", "permission_refused", stream.pk, ActorKind.USER, member.pk)
    ]


@pytest.mark.django_db(transaction=True)
def test_the_refusal_s_audit_row_is_committed_though_the_write_rolled_back(
    client_of, stream, member, full_last_column
):
    """Real transactions: the move's own transaction rolled back, the audit row of the
    refusal was committed in a transaction of its own."""
    card, wisdom = full_last_column

    client_of(member).post(
        reverse("boards:card-move", args=[stream.slug, card.pk]),
        {"to_column": wisdom.pk, "override_reason": "I insist"},
        headers=HTMX,
    )

    assert refusals() == [
        ("http.card_move", "permission_refused", stream.pk, ActorKind.USER, member.pk)
    ]
    assert Card.objects.get(pk=card.pk).column_id != wisdom.pk


# A refusal shown on its form -------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(required=False)


@pytest.fixture
def form_request(rf: RequestFactory, user):
    def make(*, htmx: bool = False) -> HttpRequest:
        request = rf.post("/somewhere/", headers=HTMX if htmx else {})
        request.user = user
        request.htmx = HtmxDetails(request)  # as django-htmx's middleware leaves it
        return request

    return make


@pytest.mark.parametrize(
    ("field", "where"),
    [("reason", "reason"), ("", "__all__"), ("no_such_field", "__all__")],
)
def test_refusals_shown_on_puts_the_error_on_its_field_or_the_form(form_request, field, where):
    form = ReasonForm({"reason": "typed by the user"})
    assert form.is_valid()
    error = Conflict("That was refused here.", field=field)

    with refusals_shown_on(form, form_request()):
        raise error

    assert form.errors == {where: ["That was refused here."]}
    assert form.refusal is error
    assert form.data["reason"] == "typed by the user"


def test_refusals_shown_on_lets_not_found_through(form_request):
    form = ReasonForm({})
    assert form.is_valid()

    with pytest.raises(NotFound), refusals_shown_on(form, form_request()):
        raise NotFound()

    assert not form.errors


def test_refusals_shown_on_audits_a_refused_authorization(form_request, user):
    form = ReasonForm({})
    assert form.is_valid()

    with refusals_shown_on(form, form_request()):
        raise PermissionRefused("Only the manager may.", data={"stream_id": 9})
    with refusals_shown_on(form, form_request()):
        raise Conflict("Full.")

    assert refusals() == [("http.page", "permission_refused", 9, ActorKind.USER, user.pk)]


def test_form_status(form_request):
    refused = ReasonForm({})
    refused.is_valid()
    with refusals_shown_on(refused, form_request()):
        raise Conflict("Full.")
    unreadable = ReasonForm({})
    unreadable.is_valid()
    unreadable.add_error("reason", "Not a reason.")
    fine = ReasonForm({})
    fine.is_valid()

    assert form_status(form_request(), refused) == 409
    assert form_status(form_request(htmx=True), refused) == 200
    assert form_status(form_request(), unreadable) == 400
    assert form_status(form_request(htmx=True), unreadable) == 200
    assert form_status(form_request(), fine) == 200


@pytest.mark.parametrize("headers", [HTMX, {}], ids=["htmx", "plain"])
def test_a_card_create_over_a_full_column_shows_the_form_again_with_the_refusal(
    client_of, stream, member, headers
):
    data = first_columns(stream)[0]
    Column.objects.filter(pk=data.pk).update(wip_limit=1)
    CardFactory(column=data)

    response = client_of(member).post(
        reverse("boards:card-create", args=[stream.slug]),
        {"cycle": data.cycle_id, "person_name": "Ada Keller", "company": "Nordwerk Pumps"},
        headers=headers,
    )

    assert response.status_code == (200 if headers else 409)
    form = response.context["form"]
    assert form.errors == {"__all__": [f"{data.name} is at its WIP limit, 1/1"]}
    assert form["person_name"].value() == "Ada Keller"
    assert Card.objects.filter(value_stream=stream).count() == 1
    assert not AuditEntry.objects.exclude(refused_code="").exists()


def test_a_member_s_posted_override_on_card_create_is_no_override(client_of, stream, member):
    """Members are not offered the override (only those who may override see it): a
    reason posted anyway is ignored, and the WIP limit refuses the card as for anyone."""
    data = first_columns(stream)[0]
    Column.objects.filter(pk=data.pk).update(wip_limit=1)
    CardFactory(column=data)

    response = client_of(member).post(
        reverse("boards:card-create", args=[stream.slug]),
        {"cycle": data.cycle_id, "person_name": "Ada Keller", "override_reason": "Hot lead"},
    )

    assert response.status_code == 409
    assert "override_reason" not in response.context["form"].fields
    assert response.context["form"].non_field_errors() == [f"{data.name} is at its WIP limit, 1/1"]
    assert Card.objects.filter(value_stream=stream).count() == 1
    assert refusals() == []  # a WIP refusal is flow, not a breach: never audited


def test_a_refusal_about_a_field_is_shown_on_it_in_the_handoff_dialog(client_of, stream, member):
    *_, wisdom = first_columns(stream)
    card = CardFactory(column=wisdom)
    next_cycle_first = Column.objects.get(
        cycle__value_stream=stream, cycle__name=DEFAULT_CYCLES[1], order=1
    )

    response = client_of(member).post(
        reverse("boards:card-handoff", args=[stream.slug, card.pk]),
        {"to_column": next_cycle_first.pk},
    )

    assert response.status_code == 409
    form = response.context["form"]
    assert list(form.errors) == ["criteria"]
    assert form.errors["criteria"][0].startswith("Required criteria not met: ")
    assert Card.objects.get(pk=card.pk).column_id == wisdom.pk


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [("get", {}, 400), ("post", HTMX, 200), ("post", {}, 303)],
    ids=["page", "htmx", "plain post"],
)
def test_a_board_endpoint_with_no_page_answer_gets_the_default_one(
    client_of, stream, member, method, headers, status
):
    card = CardFactory(column=first_columns(stream)[0])
    board = "http://testserver" + reverse("boards:board", args=[stream.slug])

    response = getattr(client_of(member), method)(
        reverse("boards:card-handoff", args=[stream.slug, card.pk]),
        headers={**headers, "Referer": board},
    )

    assert response.status_code == status
    message = "Say which column the card goes to."
    if status == 303:
        assert response["Location"] == board
        assert messages_of(response) == [message]
    else:
        assert message.encode() in response.content
    if headers:
        assert response["HX-Reswap"] == "none"
