import time

from django.core.management.base import BaseCommand, CommandError

from metrics.services import stream_metrics_rebuild
from vsm.models import ValueStream


class Command(BaseCommand):
    help = "Recompute a stream's metrics (or every stream's) from its whole move log."

    def add_arguments(self, parser) -> None:
        parser.add_argument("stream", nargs="?", help="slug or id of one value stream")

    def handle(self, *args, stream: str | None = None, **options) -> None:
        streams = ValueStream.objects.order_by("pk")
        if stream:
            streams = (
                streams.filter(slug=stream)
                if not stream.isdigit()
                else streams.filter(pk=int(stream))
            )
            if not streams.exists():
                raise CommandError(f"No value stream {stream!r}.")
        for value_stream in streams:
            started = time.perf_counter()
            result = stream_metrics_rebuild(stream_id=value_stream.pk)
            self.stdout.write(
                f"{value_stream.slug}: {result.applied} moves folded through move "
                f"{result.last_applied_move_id} in {time.perf_counter() - started:.2f} s"
            )
