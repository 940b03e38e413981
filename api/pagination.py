"""The card list's pages: a keyset cursor on the card id, so a page never shifts when
cards are added or closed meanwhile, and costs the same however deep it is."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from vsm.forms import row_id

PAGE_SIZE = 50
PAGE_SIZE_MAX = 200


class CardCursorPagination(CursorPagination):
    ordering = "id"
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = PAGE_SIZE_MAX

    def decode_cursor(self, request: Request) -> Cursor | None:
        """The cursor a request names. Raises: ValidationError (400, on ``cursor``) for
        one that is not ours (REST framework answers 404), or whose position is not a
        card id (it would reach the query)."""
        invalid = ValidationError({self.cursor_query_param: ["That page cursor is not valid."]})
        try:
            cursor: Cursor | None = super().decode_cursor(request)
        except NotFound:
            raise invalid from None
        if cursor is not None and cursor.position is not None and row_id(cursor.position) is None:
            raise invalid
        return cursor

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = super().get_paginated_response_schema(schema)
        response["required"] = ["next", "previous", "results"]
        return response
