"""Domain errors: every refusal a service can give, with a code, an HTTP status and data.

Each way in (the htmx views, the admin, later the API and the import job) translates
them in one place. ``code`` is stable for machines, ``http_status`` is what an HTTP
caller answers, ``data`` holds ids and numbers only (never personal data), and the
message is true for any caller: it never says what a screen now shows.

Modelled on Zulip's ``JsonableError`` and the HackSoft styleguide's ``ApplicationError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

# What ``data`` may hold: ids, counts, amounts and flags. Strings are refused so that a
# name or an e-mail address can never leak into an API answer or an audit row.
DataValue = int | float | Decimal | bool | None | tuple[int, ...]


def _checked_data(data: Mapping[str, DataValue] | None) -> dict[str, DataValue]:
    checked: dict[str, DataValue] = {}
    for key, value in (data or {}).items():
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, tuple):
            if not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
                raise TypeError(f"error data {key!r}: a tuple holds ids only")
        elif value is not None and not isinstance(value, int | float | Decimal | bool):
            raise TypeError(f"error data {key!r}: ids and numbers only, not {type(value)}")
        checked[key] = value
    return checked


class DomainError(Exception):
    """A refused action. ``str(error)`` is its message, fit to show any caller.

    ``field``: the input the refusal is about (a form field or an API parameter), or "".
    """

    code: ClassVar[str] = "refused"
    http_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "That was refused."

    def __init__(
        self,
        message: str = "",
        *,
        data: Mapping[str, DataValue] | None = None,
        field: str = "",
    ) -> None:
        self.message = message or self.default_message
        self.data = _checked_data(data)
        self.field = field
        super().__init__(self.message)

    def as_dict(self) -> dict[str, object]:
        """The error as an API answers it: ``{"code", "message", "data"}`` (+ ``field``)."""
        answer: dict[str, object] = {"code": self.code, "message": self.message}
        answer["data"] = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in self.data.items()
        }
        if self.field:
            answer["field"] = self.field
        return answer


class InvalidInput(DomainError):
    """The request itself cannot be carried out as given (a missing name, a bad date)."""

    code = "invalid"
    http_status = 400
    default_message = "That request could not be read."


class NotFound(DomainError):
    """Missing, or out of the actor's reach: the two are answered alike, so that a
    caller cannot learn what exists where it may not look."""

    code = "not_found"
    http_status = 404
    default_message = "Not found."


class PermissionRefused(DomainError):
    """The actor may see this but not do that (steer a stream, override a WIP limit)."""

    code = "permission_refused"
    http_status = 403
    default_message = "You may not do that here."


class Conflict(DomainError):
    """The current state forbids it (a full column, a closed card, a stale version)."""

    code = "conflict"
    http_status = 409
    default_message = "That conflicts with the current state."


class Stale(Conflict):
    """The caller acted on a version of the data that someone else changed meanwhile."""

    code = "stale"
    default_message = "Someone else changed this meanwhile; nothing was changed."


class Busy(DomainError):
    """Rows were locked longer than a request may wait; nothing changed, retry."""

    code = "busy"
    http_status = 503
    default_message = "Busy right now; nothing changed, please try again."
