"""Database engines: URL handling, SQLite settings, and schema migrations with Alembic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, Select, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

_MIGRATIONS = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """Accept URLs as people write them: ``postgres://`` and ``postgresql://`` use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def default_sqlite_url() -> str:
    """A SQLite file in the user's data folder: nothing to install or configure."""
    from platformdirs import user_data_path

    folder = user_data_path("helpline", appauthor=False, ensure_exists=True)
    return f"sqlite:///{folder / 'helpline.db'}"


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # One pooled connection, tuned once when opened (a fresh connection per operation
        # costs ~20 ms). One, because SQLite has a single writer: queueing in the pool is
        # first-come first-served, while contending connections back off in sleeps.
        engine = create_engine(
            url,
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=1,
            max_overflow=0,
        )
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(
        url,
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
        pool_size=10,
        max_overflow=30,
        pool_pre_ping=True,
    )


def locked_row(session: Session, query: Select[Any]) -> Any:
    """The row ``query`` selects, locked until the transaction ends, so a check and the write
    that depends on it are atomic: ``FOR UPDATE`` on PostgreSQL, and on SQLite (no row locks)
    the database's write lock, taken up front (``BEGIN IMMEDIATE``). Call it first."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))
        return session.scalar(query)
    return session.scalar(query.with_for_update())


def _json_text(value: Any) -> str:
    """Messages are stored as JSON on every request path; orjson is several times faster."""
    return orjson.dumps(value).decode()


_REVISION = re.compile(r"^(down_)?revision\b[^=]*=\s*(.+?)\s*$", re.MULTILINE)


def _head_revision() -> str | None:
    """The newest revision, read from the migration files' ids without importing Alembic;
    ``None`` when they do not form one chain (Alembic then sorts it out)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        for down, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            ids = set(re.findall(r"[\"']([^\"']+)[\"']", value))
            (parents if down else revisions).update(ids)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (none on a new database)."""
    with engine.connect() as connection:
        try:
            return set(connection.scalars(text("SELECT version_num FROM alembic_version")))
        except DBAPIError:  # no version table yet
            return set()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (creates it on a new database).

    A database already at the newest revision is left alone without loading Alembic, which
    would take most of a command's start-up."""
    head = _head_revision()
    if head is not None and _current_revisions(engine) == {head}:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
