"""Start-up: a database already at the newest schema opens without loading Alembic, an older
one is still migrated, and a command loads only what it uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from helpline.store import Store
from helpline.store.db import _MIGRATIONS, _head_revision

_LOADED = """
import sys
from helpline.store import Store
Store.open(sys.argv[1]).close()
print(" ".join(m for m in sys.argv[2:] if m in sys.modules))
"""


def _loaded(url: str, *modules: str) -> set[str]:
    """Which of ``modules`` a fresh process has loaded after opening the store at ``url``."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, url, *modules],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def _version(store: Store) -> str | None:
    with store.engine.connect() as connection:
        return connection.scalar(text("SELECT version_num FROM alembic_version"))


def test_the_newest_revision_is_read_from_the_migration_files() -> None:
    assert _head_revision() == ScriptDirectory(str(_MIGRATIONS)).get_current_head()


def test_a_database_at_the_newest_revision_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'helpline.db'}"
    assert "alembic" in _loaded(url, "alembic")  # a new database: created by the migrations
    assert _loaded(url, "alembic", "sqlalchemy.dialects.postgresql") == set()


def test_an_older_database_is_still_migrated(store: Store) -> None:
    script = ScriptDirectory(str(_MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    conversation_id = store.conversations.create(messages=[{"role": "user", "content": "kept"}])
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, previous)
    assert _version(store) == previous
    again = Store.open(store.engine.url.render_as_string(hide_password=False))
    assert _version(again) == head
    assert again.conversations.messages(conversation_id) == [{"role": "user", "content": "kept"}]
    again.close()
