"""Bad input gets a clear refusal, never a 500 (issue 13, "No 500 for bad input"), by
kind:

- every id and number a request carries is read by one bounded parser (vsm.forms):
  "²" (which ``str.isdigit()`` passes and ``int()`` refuses), "١" (which ``int()``
  reads as 1) and 2**63 are not ids;
- every text field of a form is as long as the column it is saved to, at most;
- a NUL in a URL is refused before any query (PostgreSQL refuses it in any text);
- the error pages never read the request's body.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.messages import get_messages
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.http import QueryDict
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

import boards.admin
import boards.forms
import boards.views.privacy
import metrics.forms.experiments
import metrics.forms.filters
import metrics.forms.forecast
import metrics.views.review
from boards.admin import CardAddForm, MarkLostForm
from boards.forms import (
    ArchiveFilterForm,
    BlockForm,
    BoardFilterForm,
    CardCreateForm,
    CardForm,
    CardMoveForm,
    CloseForm,
    ColumnPageForm,
    CommentForm,
    HandoffForm,
    ReopenForm,
    VersionForm,
    WipLimitForm,
    shown_cards,
)
from boards.models import Card, CardActivity, CardLoss, WipOverride
from boards.selectors import ArchiveCursor, TimelineCursor
from boards.services import card_comment_add
from metrics.forms.experiments import ExperimentActForm, ExperimentPlanForm, ExperimentStepForm
from metrics.forms.forecast import ForecastForm
from metrics.models import ReviewEntry
from metrics.selectors.query import last_full_week
from metrics.services import review_entry_record
from metrics.views.review import ReviewEntryForm
from pdca.models import Experiment
from tests.factories import UserFactory
from tests.support import COLLABORATION, SALES, as_actor, column_of, logged_in, new_card
from vsm.errors import DomainError
from vsm.forms import ROW_ID_MAX, AmountField, RowChoiceField, RowIdField, WholeNumberField, row_id
from vsm.models import ValueStream

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
# Not numbers, though Python reads some of them as one: superscript two (isdigit() is
# true, int() refuses it), Arabic-Indic one and twelve, a mathematical bold one,
# full-width twelve (int() reads those as 1, 12, 1, 12).
UNICODE_DIGITS = ["²", "١", "١٢", "𝟏", "１２"]
NOT_IDS = [*UNICODE_DIGITS, str(ROW_ID_MAX + 1), str(2**64), "0", "-1", "1e3", "1.0", "1_0", ""]


# One bounded parser.


def arabic(number: int) -> str:
    """``number`` in Arabic-Indic digits, which int() reads as the same number."""
    return str(number).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


@pytest.mark.parametrize("value", NOT_IDS)
def test_what_is_no_id_names_no_row(value):
    assert row_id(value) is None
    with pytest.raises(ValidationError):
        RowIdField().clean(value)


@pytest.mark.parametrize(
    ("value", "number"), [("7", 7), (" 7 ", 7), ("+7", 7), (str(ROW_ID_MAX), ROW_ID_MAX)]
)
def test_an_id_in_ascii_digits_is_read(value, number):
    assert row_id(value) == number


@pytest.mark.parametrize("value", UNICODE_DIGITS + ["1e3", "1_000", "NaN", "Infinity"])
def test_numbers_and_amounts_are_ascii_digits(value):
    with pytest.raises(ValidationError):
        WholeNumberField().clean(value)
    with pytest.raises(ValidationError):
        AmountField(max_digits=12, decimal_places=2).clean(value)


def test_a_choice_of_rows_refuses_what_is_no_id_before_any_query(stream, django_assert_num_queries):
    field = RowChoiceField(queryset=ValueStream.objects.all())
    for value in [*UNICODE_DIGITS, str(2**64)]:
        with django_assert_num_queries(0), pytest.raises(ValidationError):
            field.clean(value)
    assert field.clean(str(stream.pk)) == stream


@pytest.mark.parametrize(
    ("form", "name"),
    [
        (CardMoveForm, "to_column"),
        (CardMoveForm, "version"),
        (WipLimitForm, "wip_limit"),
        (ColumnPageForm, "after_position"),
        (CloseForm, "lost_reason"),
        (ExperimentStepForm, "version"),
        (CardForm, "estimated_value"),
    ],
)
@pytest.mark.parametrize("value", ["١", "١٢", "𝟏"])
def test_the_apps_number_fields_refuse_unicode_digits(form, name, value):
    """Django's IntegerField and DecimalField would read each of these as a number."""
    field = form.base_fields[name]

    with pytest.raises(ValidationError):
        field.clean(value)


@pytest.mark.parametrize("value", ["١٠", "１０", "1e1"])
def test_the_forecast_refuses_unicode_digits_with_its_message(value):
    form = ForecastForm(data_of(items=value), today=last_full_week())

    assert not form.is_valid()
    assert form.errors["items"] == ["Enter a whole number of deals, 1 to 10,000."]


def data_of(**values: str) -> QueryDict:
    data = QueryDict(mutable=True)
    data.update(values)
    return data


@pytest.mark.parametrize("value", ["²:1", "1:²", "١:1", "1:١", f"{2**63}:1", "1:" + "9" * 30])
def test_shown_counts_that_are_no_numbers_are_ignored(value):
    assert shown_cards(data_of(shown=value)) == {}
    assert shown_cards(data_of(shown=f"{value},5:3")) == {5: 3}


def test_the_board_poll_ignores_shown_counts_that_are_no_numbers(stream, member):
    url = reverse("boards:board-poll", args=[stream.slug])

    response = logged_in(member).get(url, {"shown": "²:1,1:²,١:١"}, headers=HTMX)

    assert response.status_code == 200


def test_a_keyboard_move_ignores_shown_counts_that_are_no_numbers(stream, manager):
    card = new_card(stream, manager)
    to = column_of(stream, COLLABORATION, "Information")
    url = reverse("boards:card-move", args=[stream.slug, card.pk])

    response = logged_in(manager).post(url, {"to_column": to.pk, "shown": "1:²,²:1"}, headers=HTMX)

    assert response.status_code == 200
    card.refresh_from_db()
    assert card.column == to


@pytest.mark.parametrize("to_column", ["²", "١", str(2**63), "-1"])
def test_a_handoff_to_a_column_that_is_no_id_is_refused(stream, manager, to_column):
    card = new_card(stream, manager, column_name="Wisdom")
    url = reverse("boards:card-handoff", args=[stream.slug, card.pk])
    client = logged_in(manager)

    shown = client.get(url, {"to_column": to_column})
    posted = client.post(url, {"to_column": to_column})

    refusal = "Say which column the card goes to."
    assert shown.status_code == 400
    assert refusal in shown.content.decode()
    # A form post is sent back with the message, as every refused post is (vsm.http).
    assert posted.status_code == 303
    assert [str(m) for m in get_messages(posted.wsgi_request)] == [refusal]
    card.refresh_from_db()
    assert card.column.cycle.name == COLLABORATION


@pytest.mark.parametrize("older", ["١.٠.١", "1.0.١", "1.0.1\n", " 1.0.1", "1_0.0.1"])
def test_a_history_page_cursor_in_other_digits_is_refused(stream, manager, older):
    card = new_card(stream, manager)
    url = reverse("boards:card-detail", args=[stream.slug, card.pk])

    response = logged_in(manager).get(url, {"older": older})

    assert response.status_code == 400
    assert str(TimelineCursor.parse("1.0.1")) == "1.0.1"


@pytest.mark.parametrize("token", ["١٢-٣", "12-٣", "12-3\n"])
def test_an_archive_cursor_in_other_digits_names_no_page(token):
    assert ArchiveCursor.parse(token) is None
    assert ArchiveCursor.parse("12-3") is not None


def test_the_admin_finds_no_row_by_an_id_in_other_digits(stream):
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client = logged_in(superuser)

    by_ascii = client.get(reverse("admin:vsm_valuestream_change", args=[stream.pk]))
    by_arabic = client.get(f"/admin/vsm/valuestream/{arabic(stream.pk)}/change/")

    assert by_ascii.status_code == 200
    assert by_arabic.status_code == 302  # "doesn't exist", back to the list
    assert by_arabic.url == reverse("admin:index")


def test_the_admins_choices_of_rows_refuse_ids_in_other_digits(stream):
    superuser = UserFactory(is_staff=True, is_superuser=True)
    request = RequestFactory().get("/")
    request.user = superuser
    form_class = admin.site._registry[boards.admin.Column].get_form(request)
    cycle = stream.cycles.get(name=SALES)

    by_ascii = form_class({"cycle": str(cycle.pk)})
    by_arabic = form_class({"cycle": arabic(cycle.pk)})

    assert "cycle" not in by_ascii.errors
    assert "cycle" in by_arabic.errors


# Lengths: a form field is at most as long as the column it is saved to.

# Every text field of the apps' plain forms: the column it is saved to, or None for
# what is only read (filters, cursors, a page to return to, a target parsed as a number).
SAVED_TO: dict[tuple[type[forms.BaseForm], str], tuple[type[models.Model], str] | None] = {
    (BoardFilterForm, "q"): None,
    (ArchiveFilterForm, "q"): None,
    (ArchiveFilterForm, "older"): None,
    (ArchiveFilterForm, "newer"): None,
    (ReopenForm, "next"): None,
    (ExperimentPlanForm, "target"): None,
    # Passwords are saved hashed.
    (BaseUserCreationForm, "password1"): None,
    (BaseUserCreationForm, "password2"): None,
    (CardForm, "person_name"): (Card, "person_name"),
    (CardForm, "company"): (Card, "company"),
    (CardForm, "email"): (Card, "email"),
    (CardForm, "notes"): (Card, "notes"),
    (CardMoveForm, "override_reason"): (WipOverride, "reason"),
    (HandoffForm, "override_reason"): (WipOverride, "reason"),
    (CardCreateForm, "override_reason"): (WipOverride, "reason"),
    (ReopenForm, "override_reason"): (WipOverride, "reason"),
    (VersionForm, "override_reason"): (WipOverride, "reason"),
    (BlockForm, "reason"): (Card, "blocked_reason"),
    (CloseForm, "lost_note"): (CardLoss, "note"),
    (MarkLostForm, "lost_note"): (CardLoss, "note"),
    (CardAddForm, "wip_override_reason"): (WipOverride, "reason"),
    (ExperimentPlanForm, "hypothesis"): (Experiment, "hypothesis"),
    (ExperimentActForm, "notes"): (Experiment, "decision_notes"),
    # Bounded by their services, which show the refusal on the field keeping the text
    # (test_texts_bounded_by_their_services_are_refused_beyond_their_columns).
    (CommentForm, "text"): (CardActivity, "text"),
    (ReviewEntryForm, "text"): (ReviewEntry, "text"),
}
BOUNDED_BY_SERVICE = {(CommentForm, "text"), (ReviewEntryForm, "text")}

FORM_MODULES = [
    boards.forms,
    boards.views.privacy,
    boards.admin,
    metrics.forms.experiments,
    metrics.forms.filters,
    metrics.forms.forecast,
    metrics.views.review,
]


def _declared_text_fields() -> list[tuple[type[forms.BaseForm], str]]:
    """Each text field of the apps' forms, by the form that declares it (a ModelForm's
    fields made from its model are checked against the model below)."""
    found = []
    for module in FORM_MODULES:
        for form in vars(module).values():
            if not (isinstance(form, type) and issubclass(form, forms.BaseForm)):
                continue
            if form.__module__ != module.__name__:
                continue
            for name, field in form.declared_fields.items():
                declared_here = all(
                    name not in getattr(base, "declared_fields", {}) for base in form.__mro__[1:]
                )
                if declared_here and isinstance(field, forms.CharField):
                    found.append((form, name))
    return found


def test_every_text_field_of_the_apps_forms_says_where_it_is_saved():
    unmapped = set(_declared_text_fields()) - set(SAVED_TO)

    assert not unmapped, f"say in SAVED_TO where these are saved (or None): {unmapped}"


def _longest_accepted(field: forms.Field, limit: int, *, email: bool) -> tuple[bool, bool]:
    """Whether ``field`` accepts a text of ``limit`` characters, and one of ``limit + 1``."""

    def text(length: int) -> str:
        if email:  # a valid address of that length
            return "a" * (length - len("@example.com")) + "@example.com"
        return "x" * length

    def accepts(value: str) -> bool:
        try:
            field.clean(value)
        except ValidationError:
            return False
        return True

    return accepts(text(limit)), accepts(text(limit + 1))


@pytest.mark.parametrize(
    ("form", "name"),
    [
        key
        for key, column in SAVED_TO.items()
        if column is not None and key not in BOUNDED_BY_SERVICE
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_a_form_field_is_as_long_as_its_column(form, name):
    model, column_name = SAVED_TO[(form, name)]
    column = model._meta.get_field(column_name)
    field = form.base_fields[name]

    if column.max_length is None:
        assert getattr(field, "max_length", None) is None
        return
    at_limit, over = _longest_accepted(
        field, column.max_length, email=isinstance(column, models.EmailField)
    )
    assert (at_limit, over) == (True, False), (
        f"{form.__name__}.{name} should take at most {column.max_length} characters, "
        f"as {model.__name__}.{column_name} does"
    )


def test_texts_bounded_by_their_services_are_refused_beyond_their_columns(stream, manager):
    card = new_card(stream, manager)
    comment_limit = CardActivity._meta.get_field("text").max_length
    entry_limit = ReviewEntry._meta.get_field("text").max_length
    # Old enough for its weekly review to have a week.
    ValueStream.objects.filter(pk=stream.pk).update(created_at=timezone.now() - timedelta(weeks=3))

    def entry(length: int) -> None:
        review_entry_record(
            stream_id=stream.pk,
            week_start=last_full_week(),
            kind="note",
            text="x" * length,
            actor=as_actor(manager),
        )

    for length, service in [
        (
            comment_limit,
            lambda n: card_comment_add(card_id=card.pk, text="x" * n, actor=as_actor(manager)),
        ),
        (entry_limit, entry),
    ]:
        with pytest.raises(DomainError) as refused:
            service(length + 1)
        assert refused.value.field == "text"
        service(length)


def _mapped(form: type[forms.BaseForm], name: str) -> bool:
    """Whether SAVED_TO says where the field is saved, for the form or a form it is
    made from (the admin's forms are subclasses of the ones it is given)."""
    return any((base, name) in SAVED_TO for base in form.__mro__)


def _admin_forms() -> list[tuple[str, type[forms.BaseForm]]]:
    """Every form of the admin (each model's, and its inlines'), as the admin builds it."""
    request = RequestFactory().get("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    found = []
    for model, model_admin in admin.site._registry.items():
        found.append((model.__name__, model_admin.get_form(request)))
        for inline in model_admin.get_inline_instances(request):
            found.append((f"{model.__name__} inline", inline.get_formset(request).form))
    return found


def test_every_admin_form_field_is_as_long_as_its_column():
    checked, too_long = 0, []
    for where, form in _admin_forms():
        model = form._meta.model
        for name, field in form.base_fields.items():
            try:
                column: Any = model._meta.get_field(name)
            except FieldDoesNotExist:
                if isinstance(field, forms.CharField) and not _mapped(form, name):
                    too_long.append(f"{where}: {name} is saved nowhere SAVED_TO says")
                continue
            if getattr(column, "max_length", None) is None or not isinstance(
                field, forms.CharField
            ):
                continue
            checked += 1
            if field.max_length != column.max_length:
                too_long.append(f"{where}: {name} takes {field.max_length}, {column.max_length}")
    assert checked > 10
    assert not too_long


@pytest.mark.parametrize("length", [255, 259, 320])
def test_an_e_mail_longer_than_its_column_is_refused_on_the_form(stream, manager, length):
    card = new_card(stream, manager, email="ada@example.com")
    email = "a" * (length - len("@example.com")) + "@example.com"
    client = logged_in(manager)

    edited = client.post(
        reverse("boards:card-edit", args=[stream.slug, card.pk]),
        {"person_name": "Ada", "email": email, "version": card.version},
    )
    created = client.post(
        reverse("boards:card-create", args=[stream.slug]),
        {"cycle": card.column.cycle_id, "person_name": "Bea", "email": email},
    )

    for response in (edited, created):
        assert response.status_code == 400
        assert "at most 254 characters" in response.content.decode()
    card.refresh_from_db()
    assert card.email == "ada@example.com"
    assert not Card.objects.filter(person_name="Bea").exists()


# NUL.


@pytest.mark.parametrize(
    "url",
    [
        "/admin/vsm/channel/?kind=%00",
        "/admin/boards/cardmove/?kind=%00",
        "/admin/boards/card/?q=a%00",
        "/admin/boards/card/?outcome__exact=%00",
        "/admin/vsm/auditentry/?action=%00",
        "/admin/%00/",
    ],
)
def test_a_nul_in_an_admin_url_is_refused(url):
    superuser = UserFactory(is_staff=True, is_superuser=True)

    response = logged_in(superuser).get(url)

    assert response.status_code == 400
    assert "That request could not be read" in response.content.decode()


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("boards:board", "q=%00"),
        ("boards:board-poll", "version=%00"),
        ("boards:archive", "q=a%00b"),
        ("metrics:dashboard", "cycle=%00"),
        ("metrics:review-latest", "week=%00"),
        ("boards:board", "%00=1"),
    ],
)
def test_a_nul_in_a_page_s_query_string_is_refused(stream, member, name, query):
    url = reverse(name, args=[stream.slug])

    response = logged_in(member).get(f"{url}?{query}")

    assert response.status_code == 400


def test_a_nul_in_a_form_is_the_form_s_error(stream, manager):
    card = new_card(stream, manager)

    response = logged_in(manager).post(
        reverse("boards:card-edit", args=[stream.slug, card.pk]),
        {"person_name": "Ada\x00", "version": card.version},
    )

    assert response.status_code == 400
    assert "Null characters are not allowed." in response.content.decode()


# The error pages never read the body.


class BodyRead(Exception):
    """Raised by a request body that must not be read."""


class UnreadableBody(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise BodyRead("the body was read")

    def readline(self, size: int = -1) -> bytes:
        raise BodyRead("the body was read")


BROKEN_MULTIPART = b'--xx\r\nContent-Disposition: form-data; name="a"\r\n\r\nno end'


def post_unreadable(client: Client, url: str):
    return client.generic(
        "POST",
        url,
        BROKEN_MULTIPART,
        content_type="multipart/form-data; boundary=xx",
        **{"wsgi.input": UnreadableBody()},
    )


@pytest.mark.parametrize("who", ["anonymous", "member"])
@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/no/such/page/", 404),
        ("/streams/no-such-stream/nothing/", 404),
        ("/admin/no/such/page/", 302),  # the admin's: log in as staff first
    ],
)
def test_an_unknown_address_is_answered_without_reading_the_body(member, who, url, status):
    client = Client() if who == "anonymous" else logged_in(member)

    malformed = client.generic(
        "POST", url, BROKEN_MULTIPART, content_type="multipart/form-data; boundary=xx"
    )
    unreadable = post_unreadable(client, url)

    assert malformed.status_code == status
    assert unreadable.status_code == status


def test_a_csrf_failure_is_a_403_without_reading_the_body(stream, member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)

    response = post_unreadable(client, reverse("boards:board", args=[stream.slug]))

    assert response.status_code == 403


def test_an_anonymous_post_is_sent_to_log_in_without_reading_the_body(stream):
    response = post_unreadable(Client(), reverse("boards:card-create", args=[stream.slug]))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_malformed_body_to_a_page_is_a_400(stream, member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    client.get(reverse("boards:board", args=[stream.slug]))  # the CSRF cookie
    token = client.cookies[settings.CSRF_COOKIE_NAME].value

    response = client.generic(
        "POST",
        reverse("boards:card-create", args=[stream.slug]),
        BROKEN_MULTIPART,
        content_type="multipart/form-data",  # no boundary
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 400
