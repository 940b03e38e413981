from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from boards.demo import DEMO_PASSWORD
from boards.models import Card, CardMove
from metrics.demo import seed_demo
from vsm.models import ValueStream


class Command(BaseCommand):
    help = (
        "Load deterministic demo data (two value streams, six months of history, experiments "
        "at each stage) and print logins. Only with DJANGO_DEBUG on, unless --force: then "
        "the logins get random passwords, printed once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even with DEBUG off; the new logins get random passwords, printed once.",
        )

    def handle(self, *args, **options) -> None:
        # Outside development a shared, published password would be a way in for anyone.
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo loads demo people and data: it runs with DJANGO_DEBUG=true only. "
                "To seed anyway, pass --force (the logins then get random passwords)."
            )
        random_passwords = not settings.DEBUG
        report = seed_demo(random_passwords=random_passwords)
        if report.created:
            self.stdout.write(self.style.SUCCESS("Demo data created."))
        else:
            self.stdout.write("Demo data already present; nothing changed.")
        self.stdout.write(
            f"{ValueStream.objects.count()} value streams, {Card.objects.count()} cards, "
            f"{CardMove.objects.count()} moves."
        )
        if not random_passwords:
            self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
            for username, role in report.logins:
                self.stdout.write(f"  {username:<22} {role}")
            return
        self.stdout.write(
            "\nDemo logins. New passwords are shown this once only: note them now. "
            "Logins made by an earlier run keep their passwords."
        )
        for username, role in report.logins:
            password = report.passwords.get(username, "(unchanged)")
            self.stdout.write(f"  {username:<22} {password:<22} {role}")
