"""A stream imports one file at a time (a second confirmed import waits its turn); an
import can be cancelled; every rejected row is kept (for the download of the rejected
rows)."""

import django.db.models.deletion
from django.db import migrations, models


def one_running_per_stream(apps, schema_editor):
    """Before the constraint: of a stream's jobs running at once (what it forbids), the
    oldest keeps importing and the others wait their turn."""
    ImportJob = apps.get_model("intake", "ImportJob")
    kept: set[int] = set()
    for pk, stream_id in (
        ImportJob.objects.filter(state="running")
        .order_by("pk")
        .values_list("pk", "value_stream_id")
    ):
        if stream_id in kept:
            ImportJob.objects.filter(pk=pk).update(
                state="waiting", lease_token="", lease_until=None
            )
        kept.add(stream_id)


class Migration(migrations.Migration):
    dependencies = [
        ("intake", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ImportRowError",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("row", models.PositiveIntegerField()),
                ("code", models.CharField(max_length=40)),
                ("field", models.CharField(blank=True, max_length=40)),
                ("detail", models.CharField(blank=True, max_length=200)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="importjob",
            name="intake_importjob_state_valid",
        ),
        migrations.AlterField(
            model_name="importjob",
            name="state",
            field=models.CharField(
                choices=[
                    ("uploaded", "Uploaded: map its columns"),
                    ("analysing", "Checking every row"),
                    ("ready", "Checked: waiting for confirmation"),
                    ("queued", "Waiting for a worker"),
                    ("waiting", "Waiting for another import of this stream to finish"),
                    ("running", "Importing"),
                    ("done", "Done"),
                    ("failed", "Stopped"),
                    ("cancelled", "Cancelled"),
                    ("discarded", "Discarded"),
                ],
                max_length=10,
            ),
        ),
        migrations.AddConstraint(
            model_name="importjob",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "state__in",
                        [
                            "uploaded",
                            "analysing",
                            "ready",
                            "queued",
                            "waiting",
                            "running",
                            "done",
                            "failed",
                            "cancelled",
                            "discarded",
                        ],
                    )
                ),
                name="intake_importjob_state_valid",
                violation_error_message="Choose a state of an import.",
            ),
        ),
        migrations.RunPython(one_running_per_stream, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="importjob",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "running")),
                fields=("value_stream",),
                name="intake_importjob_one_running_per_stream",
                violation_error_message="A stream imports one file at a time.",
            ),
        ),
        migrations.AddField(
            model_name="importrowerror",
            name="job",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="intake.importjob"
            ),
        ),
        migrations.AddConstraint(
            model_name="importrowerror",
            constraint=models.UniqueConstraint(
                fields=("job", "row"), name="intake_importrowerror_unique_row"
            ),
        ),
    ]
