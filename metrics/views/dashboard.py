"""The value stream manager's dashboard and its CSV downloads."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from boards import selectors as board_selectors
from metrics.forms.filters import DashboardFilterForm
from metrics.selectors.dashboard import dashboard_chart, dashboard_get
from vsm.actors import request_actor
from vsm.models import ValueStream


def dashboard_filter_form(request: HttpRequest, stream: ValueStream) -> DashboardFilterForm:
    form = DashboardFilterForm(
        request.GET,
        stream=stream,
        cycles=board_selectors.stream_cycles(stream=stream),
        channels=board_selectors.stream_channels(stream=stream),
    )
    form.is_valid()
    return form


@require_GET
def dashboard(request: HttpRequest, stream_slug: str) -> HttpResponse:
    stream = board_selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    form = dashboard_filter_form(request, stream)
    context = {
        "stream": stream,
        "filter_form": form,
        "dashboard": dashboard_get(form.query()),
        "filter_query": request.GET.urlencode(),
    }
    return render(request, "metrics/dashboard.html", context)


@require_GET
def dashboard_csv(request: HttpRequest, stream_slug: str, chart_key: str) -> HttpResponse:
    """Exactly one chart's data, as CSV, for the same filters as the page."""
    stream = board_selectors.stream_for_actor(actor=request_actor(request), slug=stream_slug)
    form = dashboard_filter_form(request, stream)
    chart = dashboard_chart(form.query(), chart_key)
    response = HttpResponse(chart.csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{stream.slug}-{chart.key}.csv"'
    return response
