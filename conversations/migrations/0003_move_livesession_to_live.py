"""LiveSession belongs to the live app now (live's 0001 took it over): drop it from this app's state only.

Nothing happens in the database: the table ``conversations_livesession`` and its rows are live.LiveSession's.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0002_livesession_last_seen_at"),
        ("live", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="LiveSession")],
            database_operations=[],
        ),
    ]
