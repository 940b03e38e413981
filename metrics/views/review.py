"""The weekly review: one full week's anomalies, tiles and charts, and the decisions and
notes the stream's managers record about it."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from boards import selectors as board_selectors
from metrics import services
from metrics.models import REVIEW_ENTRY_MAX_LENGTH, ReviewEntryKind
from metrics.selectors.query import week_start
from metrics.selectors.review import (
    ReviewWeeks,
    WeekNotReviewable,
    review_entry_in_week,
    review_weeks,
    week_chart_get,
    weekly_review_get,
)
from pdca.selectors import ExperimentQuery, experiments_check_ready
from vsm.actors import request_actor
from vsm.http import form_status, refusals_shown_on, refuse_back_to
from vsm.models import ValueStream


class IsoDateConverter:
    """A day in a URL as YYYY-MM-DD; anything else (or no such day) does not match: 404."""

    regex = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"

    def to_python(self, value: str) -> date:
        return date.fromisoformat(value)

    def to_url(self, value: date | str) -> str:
        return value.isoformat() if isinstance(value, date) else str(value)


class ReviewEntryForm(forms.Form):
    """A decision or a note as typed. The rules (length, who, which week) are the
    service's: the text is taken as it is."""

    kind = forms.ChoiceField(
        choices=ReviewEntryKind.choices, initial=ReviewEntryKind.DECISION, widget=forms.RadioSelect
    )
    text = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": REVIEW_ENTRY_MAX_LENGTH}),
    )


def _day(day: date) -> str:
    """A day as the pages write it: 7 Apr 2025 (and 1 Jan 0001, not 1 Jan 1)."""
    return f"{day.day} {day:%b} {day.year:04d}"


class WeekPickForm(forms.Form):
    """The picker's week: any day of it, as YYYY-MM-DD; valid when its Monday is a week
    the review covers (``weeks``). ``nearest``: the covered week closest to the one
    asked for (the last when it is no date)."""

    week = forms.DateField(
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Pick a week by a day of it, as YYYY-MM-DD."},
    )

    def __init__(self, *args, weeks: ReviewWeeks, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.weeks = weeks
        self.nearest = weeks.last

    def clean_week(self) -> date:
        monday = week_start(self.cleaned_data["week"])
        if monday not in self.weeks:
            self.nearest = self.weeks.first if monday < self.weeks.first else self.weeks.last
            raise forms.ValidationError(
                f"There is no review of the week of {_day(monday)}: the review covers the "
                f"weeks of {_day(self.weeks.first)} (the stream's first) to "
                f"{_day(self.weeks.last)}."
            )
        return monday


def _reviewable_week(stream: ValueStream, week: date) -> date:
    """Raises: WeekNotReviewable (a 404: not a week the review covers, see ReviewWeeks)."""
    if week not in review_weeks(stream):
        raise WeekNotReviewable("The review covers full weeks that are over, from Mondays.")
    return week


def _review_url(stream: ValueStream, week: date, anchor: str = "") -> str:
    return reverse("metrics:review", args=[stream.slug, week]) + anchor


def _page(
    request: HttpRequest, stream: ValueStream, week: date, form: ReviewEntryForm, status: int = 200
) -> HttpResponse:
    review = weekly_review_get(stream, week)
    context = {
        "stream": stream,
        "review": review,
        "dashboard": review.dashboard,
        "csv_prefix": reverse("metrics:review", args=[stream.slug, week]),
        "entry_form": form,
        "can_record": board_selectors.viewer_manages_stream(
            actor=request_actor(request), stream=stream
        ),
        "check_ready": experiments_check_ready(ExperimentQuery(stream=stream)),
    }
    return render(request, "metrics/review.html", context, status=status)


@require_GET
def review_latest(request: HttpRequest, stream_slug: str) -> HttpResponse:
    """The week the picker asks for (``?week=``, any day of it), else the last full week;
    a week the review does not cover is refused with a message (the nearest week shown)."""
    stream = board_selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    weeks = review_weeks(stream)
    if not weeks:
        messages.info(
            request,
            f"The weekly review starts once the stream's first week is over: on Monday "
            f"{_day(weeks.first + timedelta(weeks=1))}.",
        )
        return redirect("metrics:dashboard", stream_slug=stream.slug)
    if not request.GET.get("week"):
        return redirect(_review_url(stream, weeks.last))
    form = WeekPickForm(request.GET, weeks=weeks)
    if form.is_valid():
        return redirect(_review_url(stream, form.cleaned_data["week"]))
    for error in form.errors["week"]:
        messages.error(request, str(error))
    return redirect(_review_url(stream, form.nearest))


@require_GET
def review(request: HttpRequest, stream_slug: str, week: date) -> HttpResponse:
    stream = board_selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    if week.weekday() != 0:
        return redirect(_review_url(stream, _reviewable_week(stream, week_start(week))))
    return _page(request, stream, week, ReviewEntryForm())


@require_GET
def review_csv(request: HttpRequest, stream_slug: str, week: date, chart_key: str) -> HttpResponse:
    """Exactly one of the review's charts, as CSV: the week's, from the same source."""
    stream = board_selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    chart = week_chart_get(stream, week, chart_key)
    response = HttpResponse(chart.csv(), content_type="text/csv; charset=utf-8")
    filename = f"{stream.slug}-week-{week.isoformat()}-{chart.key}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_POST
def review_entry_record(request: HttpRequest, stream_slug: str, week: date) -> HttpResponse:
    """Record a decision or a note (managers only): back to the review on success
    (Post/Redirect/Get); the page again with the reason and the typed text otherwise."""
    stream = board_selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    week = _reviewable_week(stream, week)
    form = ReviewEntryForm(request.POST)
    if form.is_valid():
        with refusals_shown_on(form, request):
            entry = services.review_entry_record(
                stream_id=stream.pk,
                week_start=week,
                actor=request_actor(request),
                **form.cleaned_data,
            )
    if form.errors:
        return _page(request, stream, week, form, status=form_status(request, form))
    messages.success(request, f"{entry.get_kind_display()} recorded.")
    return redirect(_review_url(stream, week, "#entries"))


@require_POST
def review_entry_withdraw(
    request: HttpRequest, stream_slug: str, week: date, entry_id: int
) -> HttpResponse:
    """Withdraw a decision or note (its author or a manager); it stays listed as withdrawn."""
    stream = board_selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    if not review_entry_in_week(stream, week, entry_id):
        raise services.ReviewEntryNotFound(data={"entry_id": entry_id})
    back = _review_url(stream, week, "#entries")
    refuse_back_to(request, back)
    services.review_entry_withdraw(entry_id=entry_id, actor=request_actor(request))
    messages.success(request, "Withdrawn: it stays listed, marked as withdrawn.")
    return redirect(back)
