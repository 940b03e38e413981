"""Numbers and ids as a request carries them: one bounded parser for every app.

Django's own fields read more than people type: ``int()`` and ``Decimal()`` take any
Unicode decimal digit ("١٢" is 12), ``str.isdigit()`` passes "²", which ``int()``
refuses, and nothing bounds a number before the database sees it (2**63 cannot be
bound by SQLite, an OverflowError). Here a number is ASCII digits with an optional
sign, within bounds, or it is refused as not a number; an id names a row or nothing.
"""

from __future__ import annotations

import re
from typing import Any, Final

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

# Ids and versions are at most signed 64-bit integers in the database: a larger number
# names nothing, and SQLite cannot even bind it.
ROW_ID_MAX: Final = 2**63 - 1
ROW_ID_MIN: Final = -(2**63)

# Twenty digits hold every 64-bit number; a longer one is out of any bound anyway, and
# is refused before int() spends time on it.
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,20}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})")


def _typed(value: Any, pattern: re.Pattern[str]) -> bool:
    """Whether ``value`` (a str from a request, or a number from Python) may be parsed:
    a str must match ``pattern`` in full, after the spaces a form strips."""
    return not isinstance(value, str) or pattern.fullmatch(value.strip()) is not None


class WholeNumberField(forms.IntegerField):
    """A whole number in ASCII digits, from ``min_value`` to ``max_value`` (by default
    any signed 64-bit number): "²", "١", "1.5" and "1e3" are not numbers."""

    def __init__(
        self, *, min_value: int = ROW_ID_MIN, max_value: int = ROW_ID_MAX, **kwargs: Any
    ) -> None:
        super().__init__(min_value=min_value, max_value=max_value, **kwargs)

    def to_python(self, value: Any) -> int | None:
        if value not in self.empty_values and not _typed(value, _WHOLE_NUMBER):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        number: int | None = super().to_python(value)
        return number


class RowIdField(WholeNumberField):
    """A positive integer that can name a row (an id, a row's version)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=ROW_ID_MAX, **kwargs)


class AmountField(forms.DecimalField):
    """A decimal amount in ASCII digits with a decimal point: no exponent, no
    underscores, no other script's digits (all of which ``Decimal()`` reads)."""

    def to_python(self, value: Any) -> Any:
        if value not in self.empty_values and not _typed(value, _DECIMAL):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


_ROW_ID = RowIdField()


def row_id(value: object) -> int | None:
    """The row id ``value`` (typed or crafted input) names, or None when it names none:
    ids are whole numbers from 1 to ROW_ID_MAX ("²", "١", "abc" and 2**63 name none)."""
    try:
        number: int | None = _ROW_ID.clean(value)
    except ValidationError:
        return None
    return number


def whole_number(value: object, *, min_value: int, max_value: int) -> int | None:
    """The whole number ``value`` is, from ``min_value`` to ``max_value``, or None."""
    try:
        number: int | None = WholeNumberField(min_value=min_value, max_value=max_value).clean(value)
    except ValidationError:
        return None
    return number


class RowChoiceField(forms.ModelChoiceField):
    """A choice of rows by id: what no id can be ("١" would find row 1, 2**63 fails the
    query on SQLite) is an invalid choice before any query is made."""

    def to_python(self, value: Any) -> Any:
        if (
            value not in self.empty_values
            and not isinstance(value, models.Model)
            and isinstance(self._key_field(), models.IntegerField)
            and row_id(value) is None
        ):
            raise ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": value},
            )
        return super().to_python(value)

    def _key_field(self) -> models.Field | None:
        """The field a choice is looked up by (a foreign key's target, or the pk)."""
        if self.queryset is None:
            return None
        options = self.queryset.model._meta
        return options.get_field(self.to_field_name) if self.to_field_name else options.pk
