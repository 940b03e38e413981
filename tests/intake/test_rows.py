"""Reading a row: amounts as people type them, header names to fields, delimiters."""

from __future__ import annotations

from decimal import Decimal

import pytest

from intake.errors import ImportMappingRefused
from intake.services.files import detect_delimiter, detect_encoding
from intake.services.rows import (
    FIELDS,
    RowCode,
    StreamLookups,
    mapping_check,
    mapping_guess,
    row_error_text,
    row_read,
    value_parse,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("", Decimal(0)),
        ("1200", Decimal("1200.00")),
        ("1.234,56", Decimal("1234.56")),
        ("1,234.56", Decimal("1234.56")),
        ("€ 1 200", Decimal("1200.00")),
        ("1200 EUR", Decimal("1200.00")),
        ("12'000", Decimal("12000.00")),
        ("1,234", Decimal("1234.00")),
        ("1,5", Decimal("1.50")),
        ("0,500", Decimal("0.50")),
        ("1.000.000", Decimal("1000000.00")),
        ("$5.999", Decimal("5999.00")),
        ("19.999", Decimal("19999.00")),
        ("7.125", Decimal("7125.00")),
        ("2.345678", Decimal("2.35")),
        (".5", Decimal("0.50")),
    ],
)
def test_amounts_as_people_type_them(text, value):
    assert value_parse(text) == value


@pytest.mark.parametrize(
    "text", ["-5", "abc", "1,2,3", "1.2.3,4,5", "12 apples", "10000000000", "١٢"]
)
def test_what_is_no_amount(text):
    assert value_parse(text) is None


def test_header_names_suggest_the_fields():
    header = [
        "Vorname",
        "Nachname",
        "Firma",
        "Contact e-mail",
        "Lead source",
        "Deal value",
        "Assigned to",
        "Remarks",
        "Unrelated",
    ]
    assert mapping_guess(header) == {
        "person_name": 0,
        "last_name": 1,
        "company": 2,
        "email": 3,
        "channel": 4,
        "estimated_value": 5,
        "owner": 6,
        "notes": 7,
    }
    # "Company name" is the company, not the person's name.
    guess = mapping_guess(["Company name", "Name", "E-Mail-Adresse"])
    assert (guess["company"], guess["person_name"], guess["email"]) == (0, 1, 2)


def test_a_mapping_needs_a_name_and_one_field_per_column():
    empty = dict.fromkeys(
        [
            "person_name",
            "last_name",
            "company",
            "email",
            "channel",
            "estimated_value",
            "owner",
            "notes",
        ]
    )
    with pytest.raises(ImportMappingRefused, match="person's name or of the company"):
        mapping_check(empty, columns=3)
    with pytest.raises(ImportMappingRefused, match="one field at most"):
        mapping_check({**empty, "person_name": 0, "company": 0}, columns=3)
    with pytest.raises(ImportMappingRefused, match="no such column"):
        mapping_check({**empty, "company": 3}, columns=3)
    assert mapping_check({**empty, "company": 2}, columns=3)["company"] == 2


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("name;company;notes\nAda;Nordwerk;likes, commas, a lot\n", ";"),
        ('name,company\nAda,"Nordwerk; Pumps"\n', ","),
        ("name\tcompany\nAda\tNordwerk\n", "\t"),
        ("name\nAda\n", ","),
    ],
)
def test_the_delimiter_is_detected(text, delimiter):
    assert detect_delimiter(text) == delimiter


def test_windows_1252_is_preferred_to_look_alikes():
    sample = "Nom,Société\nHélène Lefèvre,Crèche à Paris\n".encode("cp1252") * 20
    assert detect_encoding(sample, utf8_ok=False) == "cp1252"
    assert detect_encoding(b"\xef\xbb\xbfname\n", utf8_ok=True) == "utf-8-sig"


HEADER = ["Name", "E-mail", "Notes"]


def _read(cells: list[str], *, header: list[str] | None = HEADER):
    """Row 7 of a file whose three columns are a person's name, an e-mail and notes."""
    mapping: dict[str, int | None] = dict.fromkeys(FIELDS)
    mapping.update({"person_name": 0, "email": 1, "notes": 2})
    return row_read(
        7, cells, mapping=mapping, lookups=StreamLookups(channels={}, owners={}), header=header
    )


@pytest.mark.parametrize(
    ("cells", "field", "detail"),
    [
        (["Ada\x00Keller", "", ""], "person_name", "NUL"),
        (["Ada", "ada@example.com\x00", ""], "email", "NUL"),
        (["Ada", "", "line one\x1b[31m"], "notes", "U+001B"),
        (["Ada", "", "bell\x07"], "notes", "U+0007"),
        (["Ada\x7f", "", ""], "person_name", "U+007F"),
        (["Ada\x85Keller", "", ""], "person_name", "U+0085"),
    ],
)
def test_a_control_character_in_a_mapped_cell_rejects_the_row(cells, field, detail):
    verdict = _read(cells)

    assert (verdict.action, verdict.code) == ("reject", RowCode.CONTROL_CHARACTERS)
    assert (verdict.field, verdict.detail) == (field, detail)
    assert f"contains a control character ({detail})" in row_error_text(
        verdict.code, verdict.field, verdict.detail
    )


def test_tabs_and_line_breaks_are_no_control_characters_to_refuse():
    verdict = _read(["Ada\tKeller", "", "line one\r\nline two\ttabbed"])

    assert verdict.action == "new"
    assert verdict.prospect.person_name == "Ada Keller"
    assert verdict.prospect.notes == "line one\nline two\ttabbed"


def test_an_unmapped_cell_may_hold_anything():
    assert _read(["Ada", "", "", "\x00"], header=None).action == "new"


@pytest.mark.parametrize(
    ("cells", "detail"),
    [
        (["Ada", "ada@example.com"], "2 cells where the header has 3"),
        (["Ada", "a@example.com", "", "stray"], "4 cells where the header has 3"),
        (
            ["Ada,a@example.com\nBen", "b@example.com", "", "x", "y"],
            "5 cells where the header has 3",
        ),
    ],
)
def test_a_row_with_fewer_or_more_cells_than_the_header_is_rejected(cells, detail):
    verdict = _read(cells)

    assert (verdict.action, verdict.code, verdict.detail) == ("reject", RowCode.CELL_COUNT, detail)


def test_blank_cells_after_the_last_column_are_harmless():
    assert _read(["Ada", "", "", "", " "]).action == "new"
    assert _read(["", "", "", ""]).action == "blank"


def test_a_header_ending_in_a_delimiter_lets_rows_leave_its_blank_column_out():
    header = [*HEADER, "Column 4"]  # "Name,E-mail,Notes," as header_of reads it

    assert _read(["Ada", "ada@example.com", "notes"], header=header).action == "new"
    assert _read(["Ada", "ada@example.com", "notes", "kept"], header=header).action == "new"
    assert _read(["Ada", "ada@example.com"], header=header).code == RowCode.CELL_COUNT
