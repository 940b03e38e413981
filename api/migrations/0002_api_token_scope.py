"""Token scopes: every token made before them could do everything the API does, so
each keeps that scope ("full"); a new token is given its scope when it is made."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_api_token"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scope",
            field=models.CharField(
                choices=[
                    ("intake", "Intake: create prospects only"),
                    ("full", "Full: read and move cards, read metrics, create prospects"),
                ],
                default="full",
                max_length=10,
            ),
            preserve_default=False,
        ),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.CheckConstraint(
                condition=models.Q(("scope__in", ["intake", "full"])),
                name="api_apitoken_scope_known",
                violation_error_message="A token's scope is one of: intake, full.",
            ),
        ),
    ]
