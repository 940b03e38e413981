from django.core.management.base import BaseCommand

from metrics.services import weekly_snapshot_take
from vsm.models import ValueStream


class Command(BaseCommand):
    help = "Take this ISO week's metrics snapshot of every stream now (beat does it Mondays)."

    def handle(self, *args, **options) -> None:
        for stream in ValueStream.objects.order_by("pk"):
            snapshot = weekly_snapshot_take(stream_id=stream.pk)
            self.stdout.write(f"{stream.slug}: week of {snapshot.week_start} kept")
