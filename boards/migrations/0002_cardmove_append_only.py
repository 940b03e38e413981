"""The move log is append-only: on PostgreSQL a trigger refuses UPDATE and DELETE.

TRUNCATE (test teardown, a deliberate wipe) is not a row event and is not refused.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION boards_cardmove_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'boards_cardmove is append-only: %% refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER boards_cardmove_append_only
    BEFORE UPDATE OR DELETE ON boards_cardmove
    FOR EACH ROW EXECUTE FUNCTION boards_cardmove_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS boards_cardmove_append_only ON boards_cardmove;
DROP FUNCTION IF EXISTS boards_cardmove_refuse_change();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("boards", "0001_initial")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
