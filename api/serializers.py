"""What the API reads and answers, typed for the OpenAPI schema.

Input serializers parse and bound a request (ids are whole numbers that can name a row,
texts have the lengths the models keep); the rules (WIP limits, control points,
versions, who may own a card) are the services'. Output serializers shape the rows and
read models the selectors return: no arithmetic here.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from boards.errors import InvalidMove
from boards.models import LOST_NOTE_MAX_LENGTH, NOTES_MAX_LENGTH, Card, Outcome
from boards.selectors import TimelineCursor
from boards.services.rules import prospect_name_check
from vsm.errors import InvalidInput
from vsm.forms import ROW_ID_MAX

_ASCII_WHOLE_NUMBER = re.compile(r"[0-9]{1,20}")
# An amount in a string: ASCII digits, at most 2 decimals; no sign, exponent, space or
# separator (the schema's pattern, so that the schema and the parser agree).
_AMOUNT_TEXT = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")
SEARCH_MAX_LENGTH = 100
CRITERIA_MAX = 100


class RowIdField(serializers.IntegerField):
    """An id or a version: a whole number from 1 (or ``min_value``) to 2**63 - 1. In a
    query string, ASCII digits only ("١" and "²" name no row)."""

    def __init__(self, *, min_value: int = 1, **kwargs: Any) -> None:
        super().__init__(min_value=min_value, max_value=ROW_ID_MAX, **kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and _ASCII_WHOLE_NUMBER.fullmatch(data.strip()) is None:
            self.fail("invalid")
        return int(super().to_internal_value(data))


class ErrorSerializer(serializers.Serializer):
    """Every refusal: a stable ``code`` for machines, a ``message`` for people, ``data``
    (ids and numbers; for ``invalid_input``, ``fields``: the errors by input field) and,
    when the refusal is about one input, its ``field``."""

    code = serializers.CharField(help_text="Stable, e.g. wip_limit_reached, stale, not_found.")
    message = serializers.CharField()
    # Named like an attribute of Field; DRF's metaclass takes declared fields off the class.
    data = serializers.DictField(child=serializers.JSONField())  # type: ignore[assignment]
    field = serializers.CharField(required=False)


# Inputs.


@extend_schema_field(
    {
        "anyOf": [
            {"type": "number", "minimum": 0, "maximum": 9999999999.99},
            {"type": "string", "pattern": f"^{_AMOUNT_TEXT.pattern}$"},
        ],
        "description": "An amount of 0 or more with at most 2 decimals: a JSON number, or "
        'a string of digits such as "1250.50" (no exponent, sign, space or separator).',
    }
)
class AmountField(serializers.DecimalField):
    """An estimated value: 0 to 9,999,999,999.99, as a JSON number or a string of
    digits (``_AMOUNT_TEXT``: "1e5", "+5" or " 5" are refused, as the schema says)."""

    default_error_messages = {
        "text": "Write the amount in digits with at most 2 decimals, e.g. 1250.50 (no "
        "exponent, sign, space or separator).",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=12, decimal_places=2, min_value=0, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and _AMOUNT_TEXT.fullmatch(data) is None:
            self.fail("text")
        return super().to_internal_value(data)


class ProspectCreateSerializer(serializers.Serializer):
    """A new prospect (a web form's entry): a person or a company at least; its channel
    by id or by name (not both); it enters the first column of ``cycle_id``, by default
    the stream's first cycle."""

    person_name = serializers.CharField(max_length=200, allow_blank=True, default="")
    company = serializers.CharField(max_length=200, allow_blank=True, default="")
    email = serializers.EmailField(max_length=254, allow_blank=True, default="")
    channel_id = RowIdField(required=False, allow_null=True, default=None)
    channel_name = serializers.CharField(max_length=120, allow_blank=True, default="")
    estimated_value = AmountField(default=0)
    notes = serializers.CharField(
        max_length=NOTES_MAX_LENGTH, allow_blank=True, default="", trim_whitespace=False
    )
    cycle_id = RowIdField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The board's rule, checked here too so that the answer names both inputs.
        try:
            prospect_name_check(person_name=attrs["person_name"], company=attrs["company"])
        except InvalidMove as error:
            raise serializers.ValidationError(
                {"person_name": [error.message], "company": [error.message]}
            ) from error
        if attrs["channel_id"] is not None and attrs["channel_name"].strip():
            raise serializers.ValidationError(
                {"channel_name": ["Name the channel by id or by name, not both."]}
            )
        return attrs


class CardMoveSerializer(serializers.Serializer):
    """Move a card within its cycle (to another cycle: a handoff). ``version``: the
    card's version the caller saw; ``after_card_id`` / ``before_card_id``: the open
    cards of the target column it goes between (neither: the end of the column)."""

    to_column_id = RowIdField()
    version = RowIdField()
    after_card_id = RowIdField(required=False, allow_null=True, default=None)
    before_card_id = RowIdField(required=False, allow_null=True, default=None)


class HandoffSerializer(serializers.Serializer):
    """Pass a control point: the card enters the first column of the next cycle."""

    control_point_id = RowIdField()
    criteria_met_ids = serializers.ListField(
        child=RowIdField(), max_length=CRITERIA_MAX, default=list
    )
    version = RowIdField()


class CloseSerializer(serializers.Serializer):
    """Close a card as won or lost; a lost one says why (a lost reason of the stream,
    a note, or both; one of them once the stream keeps a list)."""

    outcome = serializers.ChoiceField(choices=[Outcome.WON.value, Outcome.LOST.value])
    lost_reason_id = RowIdField(required=False, allow_null=True, default=None)
    lost_note = serializers.CharField(
        max_length=LOST_NOTE_MAX_LENGTH, allow_blank=True, default="", trim_whitespace=False
    )
    version = RowIdField()


class ReopenSerializer(serializers.Serializer):
    version = RowIdField()


class CardFilterSerializer(serializers.Serializer):
    """The card list's filters, as the board's: all optional, all together."""

    column = RowIdField(required=False, help_text="A column's id.")
    cycle = RowIdField(required=False, help_text="A cycle's id.")
    owner = RowIdField(required=False, help_text="The owner's user id.")
    channel = RowIdField(
        min_value=0, required=False, help_text="A channel's id (0: cards without a channel)."
    )
    outcome = serializers.ChoiceField(choices=Outcome.values, required=False)
    search = serializers.CharField(
        max_length=SEARCH_MAX_LENGTH,
        required=False,
        allow_blank=True,
        help_text="Text in the person's name, company, e-mail or notes.",
    )
    blocked = serializers.BooleanField(
        required=False, default=False, help_text="Blocked cards only."
    )


class MetricsFilterSerializer(serializers.Serializer):
    """The dashboard's filters: the window is widened to whole ISO weeks
    (settings.TIME_ZONE); without dates, the last 12 full weeks and this week so far."""

    cycle = RowIdField(required=False, help_text="One cycle's columns only.")
    channel = RowIdField(
        min_value=0,
        required=False,
        help_text="One channel's cards only (0: cards without a channel).",
    )
    start = serializers.DateField(required=False, help_text="First day (ISO date).")
    end = serializers.DateField(required=False, help_text="Last day (ISO date); default today.")


class HistoryQuerySerializer(serializers.Serializer):
    """A page of a card's history: ``older`` parsed into the cursor it names (None:
    the newest entries)."""

    older = serializers.CharField(
        required=False,
        max_length=60,
        help_text="The ``older`` cursor of the previous page (none: the newest entries).",
    )

    def validate_older(self, value: str) -> TimelineCursor | None:
        try:
            return TimelineCursor.parse(value)
        except InvalidInput as error:
            raise serializers.ValidationError(error.message) from error


# Outputs.


class CardSerializer(serializers.ModelSerializer):
    """A card as it is now. ``version`` is what a move, handoff, close or reopen names."""

    column_id = serializers.IntegerField(read_only=True)
    column_name = serializers.CharField(source="column.name", read_only=True)
    cycle_id = serializers.IntegerField(source="column.cycle_id", read_only=True)
    cycle_name = serializers.CharField(source="column.cycle.name", read_only=True)
    channel_id = serializers.IntegerField(read_only=True, allow_null=True)
    channel_name = serializers.SerializerMethodField()
    owner_id = serializers.IntegerField(read_only=True, allow_null=True)
    owning_team_id = serializers.IntegerField(read_only=True, allow_null=True)
    erased = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()
    # Blank when the prospect gave none: not the "email" format the model's field implies.
    email = serializers.CharField(read_only=True)

    class Meta:
        model = Card
        fields = [
            "id",
            "version",
            "person_name",
            "company",
            "email",
            "channel_id",
            "channel_name",
            "owner_id",
            "owning_team_id",
            "estimated_value",
            "notes",
            "outcome",
            "is_blocked",
            "blocked_reason",
            "column_id",
            "column_name",
            "cycle_id",
            "cycle_name",
            "position",
            "created_at",
            "updated_at",
            "column_entered_at",
            "closed_at",
            "erased",
            "links",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True})
    def get_channel_name(self, card: Card) -> str | None:
        return card.channel.name if card.channel is not None else None

    def get_erased(self, card: Card) -> bool:
        """Whether the prospect's personal data was erased (its numbers stay)."""
        return card.erased_at is not None

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "self": {"type": "string"},
                "history": {"type": "string"},
                "web": {"type": "string"},
            },
            "required": ["self", "history", "web"],
        }
    )
    def get_links(self, card: Card) -> dict[str, str]:
        """The card in the API, its history in the API, and its page on the site."""
        stream_id = card.value_stream_id
        return {
            "self": reverse("api:card-detail", args=[stream_id, card.pk]),
            "history": reverse("api:card-history", args=[stream_id, card.pk]),
            "web": reverse("boards:card-detail", args=[self.context["stream_slug"], card.pk]),
        }


class MoveSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="enter, move, handoff, won, lost or reopen.")
    from_column_id = serializers.IntegerField(allow_null=True)
    to_column_id = serializers.IntegerField()
    moved_at = serializers.DateTimeField()


class MoveResultSerializer(serializers.Serializer):
    """The card after the change, and the move logged (none when nothing changed:
    ``unchanged``, a card sent to the column it is in)."""

    card = CardSerializer()
    move = MoveSerializer(allow_null=True)
    unchanged = serializers.BooleanField()


class IntakeItemSerializer(serializers.Serializer):
    """A prospect waiting in the intake queue: ``position`` in line when it was queued
    (1: the next to enter when the first column has room)."""

    id = serializers.IntegerField()
    queued_at = serializers.DateTimeField()
    position = serializers.IntegerField(min_value=1)


class ProspectQueuedSerializer(serializers.Serializer):
    """A prospect accepted into the intake queue: it becomes a card, by itself, when the
    cycle's first column has room and those queued before it have entered."""

    status = serializers.ChoiceField(choices=["queued"])
    intake_item = IntakeItemSerializer()


class TimelineMoveSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    from_column_id = serializers.IntegerField(allow_null=True)
    to_column_id = serializers.IntegerField()


class TimelineActivitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()


class TimelineEntrySerializer(serializers.Serializer):
    """One entry of a card's history: a move or an activity (comment, edit, blocked)."""

    at = serializers.DateTimeField()
    kind = serializers.CharField(
        help_text="enter, move, handoff, won, lost, reopen, undo; comment, edit, blocked, "
        "unblocked."
    )
    who = serializers.CharField(help_text="The person, “API token 3” or “System (…)”.")
    undid = serializers.CharField(help_text="For an undo: the outcome it took back.")
    move = TimelineMoveSerializer(allow_null=True)
    activity = TimelineActivitySerializer(allow_null=True)


class TimelineSerializer(serializers.Serializer):
    """A page of a card's history, newest first; ``older``: the cursor of the next page
    (null: this page reaches the card's first entry)."""

    entries = TimelineEntrySerializer(many=True)
    older = serializers.CharField(allow_null=True)


class ColumnLayoutSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="column.pk")
    name = serializers.CharField(source="column.name")
    order = serializers.IntegerField(source="column.order")
    knowledge_level = serializers.CharField(source="column.knowledge_level")
    split = serializers.CharField(source="column.split")
    wip_limit = serializers.IntegerField(source="column.wip_limit", allow_null=True)
    open_cards = serializers.IntegerField(source="open_count")


class CycleLayoutSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="cycle.pk")
    name = serializers.CharField(source="cycle.name")
    order = serializers.IntegerField(source="cycle.order")
    owning_team_id = serializers.IntegerField(source="cycle.owning_team_id", allow_null=True)
    columns = ColumnLayoutSerializer(many=True)


class CriterionSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    text = serializers.CharField()
    # Named like an attribute of Field; DRF's metaclass takes declared fields off the class.
    required = serializers.BooleanField()  # type: ignore[assignment]


class ControlPointSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    from_cycle_id = serializers.IntegerField()
    to_cycle_id = serializers.IntegerField()
    receiving_team_id = serializers.IntegerField(allow_null=True)
    criteria = CriterionSerializer(many=True, source="criteria.all")


class ChannelSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    kind = serializers.CharField()
    is_active = serializers.BooleanField()


class LostReasonSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    is_active = serializers.BooleanField()


class StreamLayoutSerializer(serializers.Serializer):
    """A stream as a caller needs it to name things: cycles and their columns (WIP
    limits, open cards), control points and their criteria, channels, lost reasons."""

    id = serializers.IntegerField(source="stream.pk")
    name = serializers.CharField(source="stream.name")
    slug = serializers.CharField(source="stream.slug")
    customer_market = serializers.CharField(source="stream.customer_market")
    cycles = CycleLayoutSerializer(many=True)
    control_points = ControlPointSerializer(many=True)
    channels = ChannelSerializer(many=True)
    lost_reasons = LostReasonSerializer(many=True)


class TileSerializer(serializers.Serializer):
    """A headline number of the last full ISO week, against the week before and the
    mean of the window's full weeks (null: nothing to measure). ``unit``: count, money,
    days or share (0..1); ``better``: up, down or null."""

    key = serializers.CharField()
    # Named like an attribute of Field; DRF's metaclass takes declared fields off the class.
    label = serializers.CharField()  # type: ignore[assignment]
    unit = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    previous = serializers.FloatField(allow_null=True)
    average = serializers.FloatField(allow_null=True)
    change_vs_previous = serializers.FloatField(allow_null=True)
    change_vs_average = serializers.FloatField(allow_null=True)
    explanation = serializers.CharField()
    chart = serializers.CharField(help_text="The key of the chart that shows it over time.")
    better = serializers.CharField(allow_null=True)
    basis = serializers.CharField(allow_null=True)


class WindowSerializer(serializers.Serializer):
    time_zone = serializers.CharField()
    weeks = serializers.ListField(child=serializers.DateField(), help_text="Their Mondays.")
    current_week = serializers.DateField()
    current_week_days = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField()
    days = serializers.IntegerField()


class ChartLinkSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField()


class MetricsSummarySerializer(serializers.Serializer):
    """A stream's headline metrics: the tiles of the last full week (``week``, its
    Monday; null when the window has no full week) and the charts to read."""

    stream_id = serializers.IntegerField()
    week = serializers.DateField(allow_null=True)
    computed_at = serializers.DateTimeField()
    stored = serializers.BooleanField(
        help_text="From the worker's stored document (else computed for this request)."
    )
    window = WindowSerializer()
    tiles = TileSerializer(many=True)
    charts = ChartLinkSerializer(many=True)


_CELL = {"nullable": True, "anyOf": [{"type": "string"}, {"type": "number"}]}


class SeriesSerializer(serializers.Serializer):
    name = serializers.CharField()
    values = serializers.ListField(child=serializers.FloatField(allow_null=True))
    kind = serializers.CharField(help_text="bar or line.")


class ReferenceLineSerializer(serializers.Serializer):
    # Named like an attribute of Field; DRF's metaclass takes declared fields off the class.
    label = serializers.CharField()  # type: ignore[assignment]
    value = serializers.FloatField()


class BandSerializer(serializers.Serializer):
    # Named like an attribute of Field; DRF's metaclass takes declared fields off the class.
    label = serializers.CharField()  # type: ignore[assignment]
    start = serializers.CharField()
    end = serializers.CharField()


class DotsSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField())
    names = serializers.ListField(child=serializers.CharField())
    link_prefix = serializers.CharField()


@extend_schema_field({"type": "array", "items": {"type": "array", "items": _CELL}})
class RowsField(serializers.JSONField):
    pass


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "array",
            "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "minItems": 2,
            "maxItems": 2,
        },
    }
)
class MarksField(serializers.JSONField):
    pass


class ChartSerializer(serializers.Serializer):
    """One chart's data, as the dashboard draws it and its CSV holds it: x ``labels``,
    ``series`` of values, the table (``columns`` and ``rows``), reference ``lines``,
    ``marks`` ([label index, meaning]), ``bands`` (experiment windows), ``dots`` (the
    cards behind a dot chart), and ``empty_reason`` when there is too little data."""

    key = serializers.CharField()
    title = serializers.CharField()
    caption = serializers.CharField()
    verdict = serializers.CharField(allow_null=True)
    empty_reason = serializers.CharField(allow_null=True)
    labels = serializers.ListField(child=serializers.CharField())
    series = SeriesSerializer(many=True)
    columns = serializers.ListField(child=serializers.CharField())
    rows = RowsField()
    lines = ReferenceLineSerializer(many=True)
    marks = MarksField()
    bands = BandSerializer(many=True)
    dots = DotsSerializer(allow_null=True)
