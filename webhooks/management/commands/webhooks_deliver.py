"""Run the webhooks sweep once in this process: record what the move log holds and send
what is due. For the embedded mode (no broker, tasks in-process), where nothing else
sends webhooks; with a broker, beat runs the same sweep every 15 s."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from webhooks.tasks import sweep


class Command(BaseCommand):
    help = "Record and send the webhooks' due deliveries once (the beat sweep, in-process)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = sweep.apply().get()
        self.stdout.write(
            f"Recorded {result['recorded']} deliveries; sent for {len(result['due'])} "
            f"webhooks; pruned {result['pruned']}."
        )
