"""Shared fixtures: a migrated store on SQLite and on PostgreSQL, and the fake model server."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, text

from helpline.store import Store
from tests.fake_openai import FakeOpenAI

POSTGRES_ADMIN_URL = os.environ.get(
    "HELPLINE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# Till receipts rendered by tools/render_receipts.py; labels.json says what each reads as.
RECEIPTS_DIR = Path(__file__).resolve().parent / "receipts"
# The Malaysian one: dated 25/12/2018, 80.90 MYR payable, cash, change and a GST summary below.
SHOP_RECEIPT = RECEIPTS_DIR / "stationery_myr.jpg"


def rendered_receipts() -> list[dict[str, Any]]:
    """Each rendered receipt's file name with the date, currency, total and items printed on it."""
    labels: list[dict[str, Any]] = json.loads((RECEIPTS_DIR / "labels.json").read_text())
    return labels


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    name = f"helpline_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store; every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'helpline.db'}")
    else:
        opened = Store.open(request.getfixturevalue("postgres_url"))
        with opened.engine.begin() as connection:
            tables = ", ".join(f'"{table.name}"' for table in reversed(_metadata().sorted_tables))
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store, for tests that are not about the database."""
    opened = Store.open(f"sqlite:///{tmp_path / 'helpline.db'}")
    yield opened
    opened.close()


def _metadata() -> MetaData:
    from helpline.store.tables import Base

    return Base.metadata


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fake OpenAI-compatible chat server on 127.0.0.1 with an empty script."""
    with FakeOpenAI() as server:
        yield server
