"""Take over LiveSession from the conversations app, keeping its table and rows.

State only: the model's table, ``conversations_livesession``, stays as it is (``Meta.db_table`` names it), so no
row, index, constraint or foreign key changes and processes still running the previous release keep working during
a deploy. conversations' 0003 removes the model from that app's state, after this.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import live.models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("conversations", "0002_livesession_last_seen_at"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="LiveSession",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                        ),
                        (
                            "public_id",
                            models.CharField(
                                default=live.models.new_live_session_id, editable=False, max_length=40, unique=True
                            ),
                        ),
                        ("model", models.CharField(max_length=120)),
                        ("config", models.JSONField(blank=True, default=dict)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("connecting", "Connecting"),
                                    ("active", "Active"),
                                    ("reconnecting", "Reconnecting"),
                                    ("detached", "Detached (browser gone, resumable)"),
                                    ("ended", "Ended"),
                                    ("failed", "Failed"),
                                ],
                                db_index=True,
                                default="connecting",
                                max_length=20,
                            ),
                        ),
                        (
                            "channel_name",
                            models.CharField(blank=True, help_text="consumer currently holding it", max_length=200),
                        ),
                        ("resumption_handle", models.TextField(blank=True)),
                        ("resumption_handle_issued_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "last_seen_at",
                            models.DateTimeField(
                                blank=True,
                                help_text="last heartbeat of the server process holding it (stale: that process died)",
                                null=True,
                            ),
                        ),
                        ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("ended_at", models.DateTimeField(blank=True, null=True)),
                        ("messages_in", models.PositiveIntegerField(default=0)),
                        ("messages_out", models.PositiveIntegerField(default=0)),
                        ("audio_seconds_in", models.FloatField(default=0)),
                        ("audio_seconds_out", models.FloatField(default=0)),
                        ("reconnects", models.PositiveIntegerField(default=0)),
                        ("last_error_code", models.CharField(blank=True, max_length=40)),
                        ("last_error", models.TextField(blank=True)),
                        (
                            "conversation",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="live_sessions",
                                to="conversations.conversation",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="live_sessions",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "conversations_livesession",
                        "ordering": ["-started_at"],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
