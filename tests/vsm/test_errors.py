"""Domain errors: a stable code, an HTTP status and data of ids and numbers only."""

from __future__ import annotations

from decimal import Decimal

import pytest

from boards.errors import (
    CardNotFound,
    ColumnNotFound,
    ControlPointRequired,
    CriteriaNotMet,
    InvalidMove,
    StaleBoard,
    WipLimitReached,
)
from pdca.errors import ControlPointNotFound, CycleNotFound
from vsm.access import StreamNotFound
from vsm.errors import (
    Busy,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionRefused,
    Stale,
)
from vsm.services import InUse, NotInStream, NotUnique

# Each class's code and status are part of the API's contract: a change here is a
# change every client sees, so it is spelled out rather than read back from the class.
CONTRACT = [
    (DomainError, "refused", 400),
    (InvalidInput, "invalid", 400),
    (NotFound, "not_found", 404),
    (PermissionRefused, "permission_refused", 403),
    (Conflict, "conflict", 409),
    (Stale, "stale", 409),
    (Busy, "busy", 503),
    (StreamNotFound, "stream_not_found", 404),
    (StaleBoard, "stale", 409),
    (ControlPointRequired, "control_point_required", 409),
    (CriteriaNotMet, "criteria_not_met", 409),
    (InvalidMove, "invalid_move", 400),
    (CardNotFound, "card_not_found", 404),
    (ColumnNotFound, "column_not_found", 404),
    (CycleNotFound, "cycle_not_found", 404),
    (ControlPointNotFound, "control_point_not_found", 404),
    (NotUnique, "not_unique", 400),
    (NotInStream, "not_in_stream", 400),
    (InUse, "in_use", 409),
]


@pytest.mark.parametrize(("error_class", "code", "status"), CONTRACT)
def test_each_error_has_its_code_and_status(error_class, code, status):
    error = error_class()

    assert error.code == code
    assert error.http_status == status
    assert isinstance(error, DomainError)
    assert str(error) == error.message == error_class.default_message
    assert error.data == {}
    assert error.field == ""


@pytest.mark.parametrize(
    ("error_class", "base"),
    [
        (StreamNotFound, NotFound),
        (CardNotFound, NotFound),
        (ColumnNotFound, NotFound),
        (CycleNotFound, NotFound),
        (StaleBoard, Stale),
        (Stale, Conflict),
        (WipLimitReached, Conflict),
        (InvalidMove, InvalidInput),
    ],
)
def test_specific_errors_are_caught_as_their_general_kind(error_class, base):
    """A way in that knows only vsm.errors answers every app's refusals."""
    assert issubclass(error_class, base)


def test_a_message_replaces_the_default_and_the_field_is_kept():
    error = InvalidMove("A prospect needs a person or a company.", field="person_name")

    assert str(error) == "A prospect needs a person or a company."
    assert error.field == "person_name"


@pytest.mark.parametrize(
    "value",
    [
        "Ada Keller",
        "ada@example.com",
        b"bytes",
        ("1", "2"),
        (1, "two"),
        (1, True),
        [1, "two"],
        {"nested": 1},
        object(),
    ],
    ids=repr,
)
def test_data_refuses_anything_but_ids_and_numbers(value):
    with pytest.raises(TypeError, match="error data 'who'"):
        Conflict("Refused.", data={"who": value})


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (7, 7),
        (0, 0),
        (-1, -1),
        (2.5, 2.5),
        (Decimal("12.50"), Decimal("12.50")),
        (True, True),
        (None, None),
        ((3, 1, 2), (3, 1, 2)),
        ((), ()),
        ([4, 5], (4, 5)),
    ],
    ids=repr,
)
def test_data_accepts_ids_numbers_flags_and_tuples_of_ids(value, kept):
    error = Conflict("Refused.", data={"value": value})

    assert error.data == {"value": kept}
    assert type(error.data["value"]) is type(kept)


def test_as_dict_is_the_api_answer_with_tuples_as_lists():
    error = CriteriaNotMet(
        "Required criteria not met.", data={"criterion_ids": (4, 9), "card_id": 3}, field="criteria"
    )

    assert error.as_dict() == {
        "code": "criteria_not_met",
        "message": "Required criteria not met.",
        "data": {"criterion_ids": [4, 9], "card_id": 3},
        "field": "criteria",
    }


def test_as_dict_leaves_out_an_empty_field():
    assert Busy().as_dict() == {
        "code": "busy",
        "message": Busy.default_message,
        "data": {},
    }


def test_wip_limit_reached_carries_the_column_count_and_limit_but_no_name():
    error = WipLimitReached(column_id=12, column_name="Wisdom", count=5, limit=5)

    assert (error.column_id, error.column_name, error.count, error.limit) == (12, "Wisdom", 5, 5)
    assert error.code == "wip_limit_reached"
    assert error.http_status == 409
    assert str(error) == "Wisdom is at its WIP limit, 5/5"
    # The column's name is a string: it is in the message, never in the data.
    assert error.data == {"column_id": 12, "count": 5, "limit": 5}
    assert error.as_dict()["data"] == {"column_id": 12, "count": 5, "limit": 5}
