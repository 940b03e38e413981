"""Export files: CSV streamed a chunk at a time, the metrics tables as a ZIP of CSVs,
their names.

Every cell goes through ``vsm.spreadsheet`` (text a spreadsheet would run as a formula
is neutralised). A CSV starts with a UTF-8 byte order mark: Excel reads a file without
one in the machine's legacy code page and garbles every accented name; other readers
(Python's ``utf-8-sig``, pandas, LibreOffice, Google Sheets) skip it.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

from django.http import HttpResponse, StreamingHttpResponse

from exports.selectors import MetricsTables, Row, utc_iso
from vsm.models import ValueStream
from vsm.spreadsheet import write_spreadsheet_rows

BYTE_ORDER_MARK = "\ufeff"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
# The metrics ZIP's table of contents: one row per table file.
METRICS_INDEX_NAME = "index.csv"
METRICS_INDEX_COLUMNS = [
    "file",
    "table",
    "rows",
    "note",
    "cycle",
    "channel",
    "range start",
    "range end",
    "time zone",
    "computed (UTC)",
]


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """``rows`` as CSV text (Excel's dialect, CRLF line ends), each cell made safe."""
    out = io.StringIO()
    write_spreadsheet_rows(out, rows)
    return out.getvalue()


def csv_chunks(header: Sequence[str], chunks: Iterable[list[Row]]) -> Iterator[str]:
    """The CSV text of ``header`` and then of each chunk of rows, one piece per chunk:
    what a streamed answer sends, never more than one chunk held at a time."""
    yield BYTE_ORDER_MARK + csv_text([header])
    for chunk in chunks:
        yield csv_text(chunk)


def export_filename(stream: ValueStream, what: str, extension: str, *, now: datetime) -> str:
    """``<stream slug>-<what>-<UTC date>.<extension>``: "pumps-cards-2026-03-02.csv".
    A slug is ASCII letters, digits, "-" and "_", safe in a Content-Disposition."""
    return f"{stream.slug}-{what}-{now.astimezone(UTC).date().isoformat()}.{extension}"


def _as_attachment(response: HttpResponse | StreamingHttpResponse, filename: str) -> None:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'


def csv_download(
    header: Sequence[str], chunks: Iterable[list[Row]], *, filename: str
) -> StreamingHttpResponse:
    """A streamed CSV attachment: the rows are read and sent a chunk at a time while
    the client downloads, so a large export never sits whole in memory. A failure
    midway (the database gone) cuts the download short, which the browser reports as
    failed, rather than ending a file that looks whole."""
    response = StreamingHttpResponse(csv_chunks(header, chunks), content_type=CSV_CONTENT_TYPE)
    _as_attachment(response, filename)
    return response


def chart_filename(stream: ValueStream, chart_key: str) -> str:
    """A table's file in the metrics ZIP: the name its own download on the dashboard
    has (metrics.views.dashboard.dashboard_csv)."""
    return f"{stream.slug}-{chart_key}.csv"


def metrics_zip(tables: MetricsTables, *, cycle: str, channel: str) -> bytes:
    """The dashboard's tables as a ZIP: one CSV per table, named and filled as the
    dashboard's own download of that table (``Chart.csv``), plus ``index.csv``: each
    file's table title, row count, the chart's note when its data is too thin, the
    filters (``cycle`` and ``channel`` by name, as the dashboard offers them) and the
    range the tables cover, in the time zone the weeks are counted in.

    Built in memory: the tables are the dashboard's, already read whole to draw it.
    """
    stream = tables.query.stream
    window = tables.document.window
    index: list[list[object]] = [list(METRICS_INDEX_COLUMNS)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for chart in tables.charts:
            name = chart_filename(stream, chart.key)
            archive.writestr(name, (BYTE_ORDER_MARK + chart.csv()).encode())
            index.append(
                [
                    name,
                    chart.title,
                    len(chart.rows),
                    chart.empty_reason or "",
                    cycle,
                    channel,
                    window.start.isoformat(),
                    window.end.isoformat(),
                    window.time_zone,
                    utc_iso(tables.document.computed_at),
                ]
            )
        archive.writestr(METRICS_INDEX_NAME, (BYTE_ORDER_MARK + csv_text(index)).encode())
    return buffer.getvalue()


def zip_download(content: bytes, *, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/zip")
    _as_attachment(response, filename)
    return response
