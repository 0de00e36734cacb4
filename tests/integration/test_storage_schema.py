"""Migrations: they build exactly the schema the code queries, on both backends, concurrently."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.shared.storage.database import create_engine, current_revision, head_revision, migrate
from wapipe.shared.storage.schema import metadata


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_the_migrations_build_exactly_the_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []
    assert await current_revision(engine) == head_revision()


async def test_workers_starting_together_migrate_once(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(migrate(each) for each in engines))
        assert {await current_revision(each) for each in engines} == {head_revision()}
    finally:
        for each in engines:
            await each.dispose()
