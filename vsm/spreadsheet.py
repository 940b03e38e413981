"""CSV that is safe to open in a spreadsheet.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run
as a formula by Excel, LibreOffice and Google Sheets (CSV injection); such cells are
prefixed with an apostrophe, which the spreadsheet shows as text. The characters are
OWASP's list ("CSV Injection"); defusedcsv, the package on PyPI, misses the last two.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def spreadsheet_cell(value: object) -> object:
    """``value`` as a CSV cell: None as "", formula-like text prefixed with "'",
    anything else (numbers included) as it is."""
    if isinstance(value, str) and (
        value.startswith(FORMULA_STARTS) or value.lstrip().startswith(FORMULA_STARTS)
    ):
        # Also after leading blanks and line breaks (" =1+1", "\n=cmd"): some
        # spreadsheets trim them before deciding what a cell is.
        return "'" + value
    return "" if value is None else value


def write_spreadsheet_rows(out: _Writable, rows: Iterable[Iterable[object]]) -> None:
    """Write ``rows`` to ``out`` as CSV (Excel's dialect), each cell made safe."""
    writer = csv.writer(out)
    writer.writerows([spreadsheet_cell(value) for value in row] for row in rows)
