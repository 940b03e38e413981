import logging

from django.core.management.base import BaseCommand, CommandError

from metrics.services import snapshot_week_start, weekly_snapshot_take
from vsm.models import ValueStream

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Take this ISO week's metrics snapshot of every stream now (beat does it Mondays). "
        "A stream that fails is reported and skipped; the command then exits non-zero."
    )

    def handle(self, *args, **options) -> None:
        # One week for every stream, even if the run crosses midnight on Sunday.
        week_start = snapshot_week_start()
        failed = []
        streams = list(ValueStream.objects.order_by("pk"))
        for stream in streams:
            try:
                snapshot = weekly_snapshot_take(stream_id=stream.pk, week_start=week_start)
            except Exception as error:
                logger.exception("Weekly snapshot of stream %s (%s) failed", stream.pk, stream.slug)
                self.stderr.write(f"{stream.slug}: failed: {error!r}")
                failed.append(stream.slug)
                continue
            self.stdout.write(f"{stream.slug}: week of {snapshot.week_start} kept")
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(streams)} streams failed (week of {week_start}): "
                + ", ".join(failed)
            )
