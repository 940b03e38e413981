from django.core.management.base import BaseCommand

from boards.demo import DEMO_PASSWORD
from boards.models import Card, CardMove
from metrics.demo import seed_demo
from vsm.models import ValueStream


class Command(BaseCommand):
    help = (
        "Load deterministic demo data (two value streams, six months of history, experiments "
        "at each stage) and print logins."
    )

    def handle(self, *args, **options) -> None:
        report = seed_demo()
        if report.created:
            self.stdout.write(self.style.SUCCESS("Demo data created."))
        else:
            self.stdout.write("Demo data already present; nothing changed.")
        self.stdout.write(
            f"{ValueStream.objects.count()} value streams, {Card.objects.count()} cards, "
            f"{CardMove.objects.count()} moves."
        )
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
        for username, role in report.logins:
            self.stdout.write(f"  {username:<22} {role}")
