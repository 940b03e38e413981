"""URL converters of the API's routes, registered once (on import)."""

from __future__ import annotations

from django.urls import register_converter

from vsm.forms import ROW_ID_MAX


class RowIdConverter:
    """A row id in a URL: 1 to 2**63 - 1 in ASCII digits. A larger number matches no
    route (a 404) instead of reaching a query it would fail."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= ROW_ID_MAX:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(RowIdConverter, "api_row_id")
