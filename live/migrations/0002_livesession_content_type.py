"""Move LiveSession's content type from conversations to live, so what hangs on it follows the model.

Staff permissions (``change_livesession``…) and admin history point at the content type; renaming its app label
keeps them, where letting ``migrate`` create a fresh ``live.livesession`` type would orphan them. On a new
database neither exists yet (content types are made after migrating) and this does nothing.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def _relabel(apps: StateApps, old: str, new: str) -> None:
    content_types = apps.get_model("contenttypes", "ContentType").objects
    if not content_types.filter(app_label=new, model="livesession").exists():
        content_types.filter(app_label=old, model="livesession").update(app_label=new)


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _relabel(apps, "conversations", "live")


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _relabel(apps, "live", "conversations")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("conversations", "0003_move_livesession_to_live"),
        ("live", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
