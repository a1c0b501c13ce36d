"""Shared fixtures: one Postgres per session, one migrated template, a clone per test.

Tests use DATABASE_URL when it is set (any Postgres the user has, with CREATEDB), else an
embedded pgserver started for the session and deleted after it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from taskmill.db import Database
from taskmill.db.migrate import migrate

from local.postgres import create_database, drop_database, embedded_postgres

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    with embedded_postgres(Path(tmp_path_factory.mktemp("pgdata")), keep_data=False) as url:
        yield url


@pytest.fixture(scope="session")
def template_database(postgres_server_url: str) -> Iterator[str]:
    """A database migrated once per session; each test clones it."""
    name = f"taskmill_template_{os.getpid()}"
    drop_database(postgres_server_url, name)
    url = create_database(postgres_server_url, name)
    migrate(url)
    yield name
    drop_database(postgres_server_url, name)


@pytest.fixture
def database_url(postgres_server_url: str, template_database: str) -> Iterator[str]:
    name = f"taskmill_test_{os.getpid()}_{next(_counter)}"
    url = create_database(postgres_server_url, name, template=template_database)
    yield url
    drop_database(postgres_server_url, name)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()
