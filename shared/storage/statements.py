"""How the stores run their statements: SQLAlchemy writes them, the driver runs them with tuples.

Each statement is SQLAlchemy Core over ``schema`` (so one text serves both backends), compiled
once per backend and cached. Rows travel as msgspec Structs, passed to the driver as plain tuples
in the order the compiled statement binds them: going row by row through SQLAlchemy's parameter
handling cost more than the database's own work (tests/bench/results/status_worker.md).

- ``insert_new``: rows inserted ON CONFLICT DO NOTHING, many per statement (multi-row VALUES),
  returning the keys that went in: the dedup of every keyed write, and its count.
- ``execute_many``: one prepared statement, many rows (the driver's executemany).
- ``select_in`` / ``execute_in``: a statement whose one ``IN`` list is bound to ``ids``, compiled
  once; its list is written out for each call's number of values.

They take any ``Connection``: SQLAlchemy's ``AsyncConnection``, or a plain one run in a thread of
its own for SQLite (workers/storage.py ``Transactions``).

Both write rows in the order of their key: two workers whose batches share rows then take the
rows' locks in the same order, and never deadlock on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from operator import attrgetter
from typing import Any, Final, NamedTuple, Protocol, TypeVar

import msgspec
from sqlalchemy import Dialect, Executable, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite

# SQLite allows 32,766 bound values a statement, PostgreSQL 32,767: this many rows of up to
# 32 columns fit.
ROWS_PER_STATEMENT: Final = 1000


class Result(Protocol):
    """What the stores read of a statement's result."""

    def all(self) -> Sequence[Any]: ...  # rows, read by column name (``row.wamid``)

    def scalars(self) -> Iterable[Any]: ...  # each row's first value


class Connection(Protocol):
    """What the stores use of a connection, in the caller's transaction."""

    @property
    def dialect(self) -> Dialect: ...

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Result: ...

    async def execute(self, statement: Executable) -> Result: ...


def insert_for(dialect: Dialect, table: Table) -> Any:
    """``table``'s insert with ``on_conflict_do_nothing``/``_do_update`` and ``.excluded``."""
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class Prepared(NamedTuple):
    sql: str
    order: tuple[int, ...]  # the Struct's field indexes, in the order the statement binds them

    def values(self, row: msgspec.Struct) -> tuple[Any, ...]:
        fields = msgspec.structs.astuple(row)
        return tuple(fields[index] for index in self.order)


def prepare(statement: Any, dialect: Dialect, struct: type[msgspec.Struct]) -> Prepared:
    """``statement`` compiled for ``dialect``, binding every field of ``struct``."""
    fields = list(struct.__struct_fields__)
    compiled = statement.compile(dialect=dialect, column_keys=fields)
    bound = list(compiled.positiontup or ())
    if sorted(bound) != sorted(fields):
        raise RuntimeError(f"the statement binds {bound}, not the fields of {struct.__name__}")
    return Prepared(str(compiled.string), tuple(fields.index(name) for name in bound))


async def execute_many(
    connection: Connection, prepared: Prepared, rows: Sequence[msgspec.Struct], key: str
) -> None:
    if rows:
        ordered = sorted(rows, key=attrgetter(key))
        await connection.exec_driver_sql(prepared.sql, [prepared.values(row) for row in ordered])


async def insert_new(
    connection: Connection, table: Table, rows: Sequence[msgspec.Struct], key: str
) -> set[str]:
    """Insert ``rows`` unless their ``key`` is there already; return the keys inserted."""
    inserted: set[str] = set()
    if not rows:
        return inserted
    struct = type(rows[0])
    ordered = sorted(rows, key=attrgetter(key))
    for start in range(0, len(ordered), ROWS_PER_STATEMENT):
        chunk = ordered[start : start + ROWS_PER_STATEMENT]
        insert = _insert_new(connection.dialect, table, struct, key, len(chunk))
        params = tuple(value for row in chunk for value in insert.values(row))
        result = await connection.exec_driver_sql(insert.sql, params)
        inserted.update(result.scalars())
    return inserted


IDS: Final = "ids"  # the expanding parameter a ``select_in`` query binds its list to


def in_ids(column: Any) -> Any:
    """``column IN (the list)``, for a query that ``select_in`` runs."""
    return column.in_(bindparam(IDS, expanding=True))


S = TypeVar("S", bound=msgspec.Struct)


def columns_of(table: Table, row_type: type[msgspec.Struct]) -> list[Any]:
    """``table``'s columns named as ``row_type``'s fields, in their order (read with
    ``struct_of``)."""
    return [table.c[name] for name in row_type.__struct_fields__]


def struct_of(row_type: type[S], row: Sequence[Any]) -> S:
    """A row of ``columns_of(table, row_type)`` as a ``row_type``: read by position, as both
    SQLAlchemy's rows and the plain driver's (workers/storage.py) are tuples."""
    return row_type(**dict(zip(row_type.__struct_fields__, row, strict=True)))


async def select_in(
    connection: Connection, query: Any, ids: Sequence[Any], **params: Any
) -> Sequence[Any]:
    """The rows of ``query`` (its list bound by ``in_ids``) for ``ids``."""
    if not ids:
        return []
    return (await execute_in(connection, query, ids, **params)).all()


async def execute_in(
    connection: Connection, statement: Any, ids: Sequence[Any], **params: Any
) -> Result:
    """``statement`` (its list bound by ``in_ids``, not empty) for ``ids``, its other
    parameters from ``params``: compiled once, its list written out for each call's number of
    values (SQLAlchemy's own execute works the statement's cache key and parameters out anew on
    every call: a fifth of the sender's journal in its loop, tests/bench/results/sender.md)."""
    found = _compiled_in(statement, connection.dialect)
    if missing := found.required - params.keys():  # SQLAlchemy's execute refuses these too
        raise TypeError(f"execute_in: no value for {', '.join(sorted(missing))}")
    values = found.values | params
    head = [values[name] for name in found.before]
    tail = [values[name] for name in found.after]
    if connection.dialect.paramstyle == "qmark":
        marks = ", ".join("?" * len(ids))
    else:  # asyncpg: $1, $2, ... numbered after the statement's others (order does not matter)
        marks = ", ".join(f"${n}" for n in range(len(head) + 1, len(head) + len(ids) + 1))
    sql = found.sql.replace(_POSTCOMPILED, marks)
    return await connection.exec_driver_sql(sql, (*head, *ids, *tail))


_POSTCOMPILED: Final = f"__[POSTCOMPILE_{IDS}]"


class _InStatement(NamedTuple):
    sql: str  # the list's place marked _POSTCOMPILED
    before: tuple[str, ...]  # the parameters the driver takes before the list's values
    after: tuple[str, ...]  # and after them (qmark: by their place in the text)
    values: dict[str, Any]  # what the statement binds itself (its literals)
    required: frozenset[str]  # what the caller must bind (bindparam without a value)


@lru_cache(maxsize=64)
def _compiled_in(statement: Any, dialect: Dialect) -> _InStatement:
    compiled = statement.compile(dialect=dialect)
    sql = str(compiled.string)
    if sql.count(_POSTCOMPILED) != 1:
        raise RuntimeError(f"the statement binds no single list by in_ids: {sql}")
    names = list(compiled.positiontup or ())
    at = names.index(IDS)
    if dialect.paramstyle == "qmark":
        before, after = names[:at], names[at + 1 :]
    else:  # numbered: the others $1 ... $n in their order, the list's values after them
        before, after = names[:at] + names[at + 1 :], []
    required = frozenset(name for name, bind in compiled.binds.items() if bind.required) - {IDS}
    return _InStatement(sql, tuple(before), tuple(after), dict(compiled.params), required)


@lru_cache(maxsize=1024)
def _insert_new(
    dialect: Dialect, table: Table, struct: type[msgspec.Struct], key: str, rows: int
) -> Prepared:
    """The insert for ``rows`` rows: compiled by SQLAlchemy for one row, then its VALUES group
    repeated with the placeholders numbered on (compiling each batch size anew would cost more
    than the insert itself)."""
    one = prepare(
        insert_for(dialect, table)
        .on_conflict_do_nothing(index_elements=[key])
        .returning(table.c[key]),
        dialect,
        struct,
    )
    head, values = one.sql.split(" VALUES (", 1)
    group, tail = values.split(") ON CONFLICT", 1)
    width = len(one.order)
    groups = ", ".join(f"({_renumbered(group, row * width)})" for row in range(rows))
    return Prepared(f"{head} VALUES {groups} ON CONFLICT{tail}", one.order)


def _renumbered(group: str, offset: int) -> str:
    """``$1, $2`` -> ``$15, $16`` for numbered placeholders; ``?`` stays as it is."""
    if not offset:
        return group
    return re.sub(r"\$(\d+)", lambda number: f"${int(number.group(1)) + offset}", group)
