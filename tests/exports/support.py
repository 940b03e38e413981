"""Helpers for the exports' tests: reading a download as a spreadsheet would."""

from __future__ import annotations

import csv
import io

from django.http import HttpResponse, StreamingHttpResponse

from exports.files import BYTE_ORDER_MARK


def body_text(response: HttpResponse | StreamingHttpResponse) -> str:
    """The whole answer as text (a streamed one read to its end)."""
    if isinstance(response, StreamingHttpResponse):
        return b"".join(response.streaming_content).decode("utf-8")  # type: ignore[arg-type]
    return response.content.decode("utf-8")


def csv_rows(text: str) -> list[list[str]]:
    """A CSV file's rows, header first; the file must start with a byte order mark."""
    assert text.startswith(BYTE_ORDER_MARK), "an export starts with a UTF-8 byte order mark"
    return list(csv.reader(io.StringIO(text.removeprefix(BYTE_ORDER_MARK), newline="")))


def csv_records(text: str) -> list[dict[str, str]]:
    """A CSV file's rows as {column: cell}, after checking every row has all columns."""
    header, *rows = csv_rows(text)
    for row in rows:
        assert len(row) == len(header), row
    return [dict(zip(header, row, strict=True)) for row in rows]
