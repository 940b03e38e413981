"""A stream's metrics through the API: the dashboard's headline tiles and its charts'
data, read by the dashboard's own selectors (metrics.selectors.dashboard), for the
dashboard's filters."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api.serializers import ChartSerializer, MetricsFilterSerializer, MetricsSummarySerializer
from api.views.common import CHART_KEY, READ_ERRORS, STREAM_ID, ApiView, responses, valid
from boards import selectors as board_selectors
from metrics.forms.filters import DashboardFilterForm
from metrics.selectors.dashboard import dashboard_chart, dashboard_get
from metrics.selectors.query import MetricsQuery
from vsm.models import ValueStream

METRICS = "Metrics"


def _metrics_query(request: Request, stream: ValueStream) -> MetricsQuery:
    """The query the dashboard's filters in the query string ask for.

    Raises: ValidationError (a cycle or channel not the stream's, a date out of range).
    """
    valid(MetricsFilterSerializer, request.query_params)
    form = DashboardFilterForm(
        request.query_params,
        stream=stream,
        cycles=board_selectors.stream_cycles(stream=stream),
        channels=board_selectors.stream_channels(stream=stream),
    )
    if not form.is_valid():
        errors = form.errors.get_json_data()
        raise ValidationError({name: [e["message"] for e in each] for name, each in errors.items()})
    return form.query()


class MetricsSummary(ApiView):
    @extend_schema(
        tags=[METRICS],
        operation_id="metrics_get",
        summary="The stream's headline metrics",
        description=(
            "The dashboard's tiles for the last full ISO week (settings.TIME_ZONE), and "
            "its charts, each readable at its `url` with the same filters."
        ),
        parameters=[STREAM_ID, MetricsFilterSerializer],
        responses=responses({200: MetricsSummarySerializer}, READ_ERRORS),
    )
    def get(self, request: Request, stream_id: int) -> Response:
        stream = self.stream(request, stream_id)
        dashboard = dashboard_get(_metrics_query(request, stream))
        filters = request.query_params.urlencode()
        charts = [
            {
                "key": chart.key,
                "title": chart.title,
                "url": reverse("api:metrics-chart", args=[stream.pk, chart.key])
                + (f"?{filters}" if filters else ""),
            }
            for chart in dashboard.charts
        ]
        answer = {
            "stream_id": stream.pk,
            "week": dashboard.week,
            "computed_at": dashboard.document.computed_at,
            "stored": dashboard.stored,
            "window": dashboard.document.window,
            "tiles": dashboard.tiles,
            "charts": charts,
        }
        return Response(MetricsSummarySerializer(answer).data)


class MetricsChart(ApiView):
    @extend_schema(
        tags=[METRICS],
        operation_id="metrics_chart_get",
        summary="One chart's data",
        description="Exactly what the dashboard draws and its CSV holds, for the same filters.",
        parameters=[STREAM_ID, CHART_KEY, MetricsFilterSerializer],
        responses=responses({200: ChartSerializer}, READ_ERRORS),
    )
    def get(self, request: Request, stream_id: int, chart_key: str) -> Response:
        stream = self.stream(request, stream_id)
        chart = dashboard_chart(_metrics_query(request, stream), chart_key)
        return Response(ChartSerializer(chart).data)
