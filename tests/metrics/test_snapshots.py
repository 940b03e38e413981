"""Weekly snapshots: filed under the ISO week of the configured time zone, taken for
every stream (one without moves too), and one stream's failure never stops the others."""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone

from boards.models import CardMove
from boards.services import card_create, value_stream_create
from metrics import services, tasks
from metrics.models import MetricsProgress, StreamMetrics, WeeklySnapshot
from tests.support import TEST_SYSTEM, as_actor, first_column
from vsm.models import ValueStream

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]

LAST_MONDAY = datetime.date(2025, 1, 6)
THIS_MONDAY = datetime.date(2025, 1, 13)


@pytest.fixture(autouse=True)
def _no_pending_marks():
    cache.clear()
    yield
    cache.clear()


@contextmanager
def frozen(instant: datetime.datetime) -> Iterator[None]:
    """The application's clock (django.utils.timezone.now) stands still at ``instant``."""
    with mock.patch("django.utils.timezone.now", return_value=instant.astimezone(datetime.UTC)):
        yield


def run_beat_task() -> None:
    tasks.weekly_snapshots.delay()


def run_command() -> None:
    call_command("metrics_snapshot", stdout=mock.Mock(), stderr=mock.Mock())


RUNS = {"beat": run_beat_task, "command": run_command}


def add_prospect(stream: ValueStream, *, at: datetime.datetime | None = None) -> int:
    """Create a prospect; returns the id of its move."""
    card = card_create(
        cycle_id=first_column(stream).cycle_id,
        actor=as_actor(stream.manager),
        company="Acme",
        at=at,
    ).card
    return CardMove.objects.filter(card=card).get().pk


def this_week() -> datetime.date:
    today = timezone.localdate()
    return today - datetime.timedelta(days=today.weekday())


def weeks_of(stream: ValueStream) -> dict[datetime.date, WeeklySnapshot]:
    return {s.week_start: s for s in WeeklySnapshot.objects.filter(value_stream=stream)}


def new_stream(name: str, manager) -> ValueStream:
    return value_stream_create(
        actor=TEST_SYSTEM, name=name, customer_market="Mid-sized manufacturers", manager=manager
    )


def make_streams(manager, *, empty_middle: bool) -> list[ValueStream]:
    """Three streams in pk order, each with a prospect (but the middle one if empty)."""
    streams = [new_stream(name, manager) for name in ("Pumps", "Valves", "Seals")]
    for stream in streams:
        if not (empty_middle and stream is streams[1]):
            add_prospect(stream)
    return streams


@pytest.fixture
def three_streams(manager) -> list[ValueStream]:
    """Three streams in pk order; the middle one has no moves."""
    return make_streams(manager, empty_middle=True)


@pytest.fixture
def busy_streams(manager) -> list[ValueStream]:
    """Three streams in pk order, each with a move."""
    return make_streams(manager, empty_middle=False)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Tokyo"])
def test_the_monday_run_files_under_the_new_local_week(settings, stream, zone, run):
    settings.TIME_ZONE = zone
    local = ZoneInfo(zone)
    last_week_move = add_prospect(stream, at=datetime.datetime(2025, 1, 7, 10, tzinfo=local))
    with frozen(datetime.datetime(2025, 1, 8, 12, tzinfo=local)):
        services.weekly_snapshot_take(stream_id=stream.pk, week_start=LAST_MONDAY)
    last_week = weeks_of(stream)[LAST_MONDAY]
    this_week_move = add_prospect(stream, at=datetime.datetime(2025, 1, 11, 10, tzinfo=local))

    # Beat's crontab (Mondays 00:10) runs in settings.TIME_ZONE: in UTC it is still
    # Sunday (23:10 in Berlin's winter, 15:10 for Tokyo).
    monday_run = datetime.datetime(2025, 1, 13, 0, 10, tzinfo=local)
    assert monday_run.astimezone(datetime.UTC).date() == datetime.date(2025, 1, 12)
    with frozen(monday_run.astimezone(datetime.UTC)):
        RUNS[run]()

    weeks = weeks_of(stream)
    assert sorted(weeks) == [LAST_MONDAY, THIS_MONDAY]
    assert weeks[THIS_MONDAY].through_move_id == this_week_move
    assert datetime.datetime.fromisoformat(weeks[THIS_MONDAY].data["computed_at"]) == monday_run
    kept = weeks[LAST_MONDAY]
    assert (kept.through_move_id, kept.taken_at, kept.data) == (
        last_week_move,
        last_week.taken_at,
        last_week.data,
    )


def test_a_week_starts_on_a_monday(stream):
    add_prospect(stream)

    with pytest.raises(ValueError, match="Monday"):
        services.weekly_snapshot_take(stream_id=stream.pk, week_start=datetime.date(2025, 1, 8))

    assert not WeeklySnapshot.objects.exists()


@pytest.mark.parametrize("run", RUNS)
def test_a_stream_without_moves_gets_its_document_and_the_others_theirs(three_streams, run):
    RUNS[run]()

    week = this_week()
    for stream in three_streams:
        snapshot = weeks_of(stream)[week]
        assert snapshot.data == StreamMetrics.objects.get(value_stream=stream).data
    empty = weeks_of(three_streams[1])[week]
    assert empty.through_move_id == 0
    assert [doc["wip_now"] for doc in empty.data["columns"]] == [0] * 12
    assert empty.data["aging"]["open_cards"] == 0
    assert [weeks_of(s)[week].data["aging"]["open_cards"] for s in three_streams] == [1, 0, 1]


@pytest.fixture
def failures_not_raised() -> Iterator[None]:
    """Eager tasks retry instead of raising to the caller, as on a worker."""
    conf = tasks.weekly_snapshot.app.conf
    saved = conf["task_eager_propagates"]
    conf["task_eager_propagates"] = False
    yield
    conf["task_eager_propagates"] = saved


def failing_for(failing: int, *, times: int | None = None):
    """Make one stream's snapshot raise (``times`` times, or always), in its first step
    (the fold): returns the patch and the list of streams whose snapshot was tried."""
    real = services.stream_metrics_advance
    calls = []

    def advance(*, stream_id: int, **kwargs):
        calls.append(stream_id)
        if stream_id == failing and (times is None or calls.count(stream_id) <= times):
            raise RuntimeError(f"stream {stream_id} failed")
        return real(stream_id=stream_id, **kwargs)

    return mock.patch.object(services, "stream_metrics_advance", side_effect=advance), calls


def test_a_failing_stream_does_not_stop_the_beat_task(busy_streams, caplog):
    middle = busy_streams[1]
    patch, calls = failing_for(middle.pk)

    with patch:
        result = tasks.weekly_snapshots.delay().get()

    week = this_week()
    assert calls == [stream.pk for stream in busy_streams]
    assert [week in weeks_of(s) for s in busy_streams] == [True, False, True]
    assert result == {"week_start": week.isoformat(), "streams": 3, "failed": [middle.pk]}
    assert f"Weekly snapshot of stream {middle.pk}, week of {week} failed" in caplog.text


@pytest.mark.parametrize(("failures", "attempts", "kept"), [(1, 2, True), (None, 6, False)])
def test_a_stream_snapshot_is_retried_under_its_week(
    busy_streams, failures_not_raised, failures, attempts, kept
):
    # As on a worker: a failure is retried, not raised to the caller. (Run eagerly, the
    # retries follow at once; a worker waits 60 s, 120 s, ... with jitter.)
    middle = busy_streams[1]
    patch, calls = failing_for(middle.pk, times=failures)

    with patch:
        result = tasks.weekly_snapshot.apply((middle.pk, LAST_MONDAY.isoformat()))

    assert calls == [middle.pk] * attempts
    assert result.successful() is kept
    assert (LAST_MONDAY in weeks_of(middle)) is kept
    assert attempts == 1 + (tasks.weekly_snapshot.max_retries if failures is None else 1)


def test_the_beat_task_enqueues_one_task_per_stream(three_streams):
    with mock.patch.object(tasks.weekly_snapshot, "apply_async") as publish:
        tasks.weekly_snapshots.delay()

    week = this_week().isoformat()
    assert publish.call_args_list == [mock.call((s.pk, week)) for s in three_streams]
    assert not WeeklySnapshot.objects.exists()


def test_a_failing_stream_does_not_stop_the_command(busy_streams, caplog):
    middle = busy_streams[1]
    patch, _ = failing_for(middle.pk)
    out, err = mock.Mock(), mock.Mock()

    with patch, pytest.raises(CommandError, match=r"1 of 3 streams failed.*: valves") as failed:
        call_command("metrics_snapshot", stdout=out, stderr=err)

    assert failed.value.returncode == 1
    assert [this_week() in weeks_of(s) for s in busy_streams] == [True, False, True]
    written = " ".join(str(c.args[0]) for c in out.write.call_args_list)
    assert "pumps: week of" in written and "seals: week of" in written
    assert "valves: failed" in str(err.write.call_args_list)
    assert f"Weekly snapshot of stream {middle.pk} (valves) failed" in caplog.text


def test_metrics_rebuild_takes_a_slug_before_an_id_and_goes_on_past_a_failure(manager):
    # A stream whose slug is all digits ("2") is found by its slug, not taken for id 2.
    first = value_stream_create(
        actor=TEST_SYSTEM, name="First", customer_market="Pumps", manager=manager
    )
    digits = value_stream_create(
        actor=TEST_SYSTEM, name="Digits", customer_market="Valves", manager=manager
    )
    ValueStream.objects.filter(pk=digits.pk).update(slug=str(first.pk))
    out = io.StringIO()
    call_command("metrics_rebuild", str(first.pk), stdout=out)
    assert out.getvalue().startswith(f"{first.pk}: ")
    assert MetricsProgress.objects.filter(value_stream=digits).exists()
    assert not MetricsProgress.objects.filter(value_stream=first).exists()
    # Every stream: one that fails is reported, the others are rebuilt, the exit fails.
    real = services.stream_metrics_rebuild

    def failing_for_first(*, stream_id):
        if stream_id == first.pk:
            raise RuntimeError("disk full")
        return real(stream_id=stream_id)

    errors = io.StringIO()
    with (
        mock.patch(
            "metrics.management.commands.metrics_rebuild.stream_metrics_rebuild",
            failing_for_first,
        ),
        pytest.raises(CommandError, match="1 stream"),
    ):
        call_command("metrics_rebuild", stdout=io.StringIO(), stderr=errors)
    assert "disk full" in errors.getvalue()
