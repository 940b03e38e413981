"""Read rendered board HTML the way a browser would: which card sits in which column.

Substring checks cannot tell a card in its origin column from one in its destination;
these helpers parse the markup (columns are ``<section data-column-id>``, cards
``<li data-card-id>``) so tests assert on the structure the user sees.
"""

from __future__ import annotations

from collections import defaultdict
from html.parser import HTMLParser


class _BoardParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[int | None] = []
        self.cards: dict[int, list[int]] = defaultdict(list)
        self.by_id: dict[str, dict[str, str | None]] = {}
        # A live update's delta: the cards gone from the board.
        self.gone: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "id" in attributes and attributes["id"]:
            self.by_id[attributes["id"]] = attributes
        if tag in ("section", "div"):
            # A column (section), or a delta's changed card in its column (div).
            column_id = attributes.get(
                "data-column-id" if tag == "section" else "data-delta-column"
            )
            self.sections.append(int(column_id) if column_id else None)
            if column_id:
                self.cards.setdefault(int(column_id), [])
        elif tag == "i" and attributes.get("data-delta-gone"):
            self.gone.append(int(attributes["data-delta-gone"] or 0))
        elif tag == "li" and attributes.get("data-card-id"):
            open_columns = [c for c in self.sections if c is not None]
            column = open_columns[-1] if open_columns else 0
            self.cards[column].append(int(attributes["data-card-id"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("section", "div") and self.sections:
            self.sections.pop()


def parse(html: bytes | str) -> _BoardParser:
    parser = _BoardParser()
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    parser.close()
    return parser


def cards_by_column(html: bytes | str) -> dict[int, list[int]]:
    """Card ids per rendered column id, in page order (0: cards outside any column)."""
    return dict(parse(html).cards)


def cards_gone(html: bytes | str) -> list[int]:
    """The card ids a live update's delta says are gone from the board."""
    return parse(html).gone


def element(html: bytes | str, element_id: str) -> dict[str, str | None]:
    """The attributes of the element with this id; KeyError when it is not rendered."""
    return parse(html).by_id[element_id]


def has_element(html: bytes | str, element_id: str) -> bool:
    return element_id in parse(html).by_id
