"""Which database errors are an outage (wait) and which the batch's fault (retry, dead-letter)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from wapipe.workers.storage import is_outage


class DriverError(Exception):
    def __init__(self, sqlstate: str | None = None) -> None:
        super().__init__("from the driver")
        self.sqlstate = sqlstate


def error(
    kind: type[DBAPIError], sqlstate: str | None = None, invalidated: bool = False
) -> DBAPIError:
    return kind("INSERT ...", {}, DriverError(sqlstate), connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("sqlstate", "outage"),
    [
        ("08006", True),  # connection failure
        ("40P01", True),  # deadlock detected: run the batch again
        ("40001", True),  # serialization failure
        ("53100", True),  # disk full
        ("57P01", True),  # admin shutdown
        ("57P03", True),  # cannot connect now
        ("58030", True),  # I/O error
        ("25006", True),  # read-only transaction, during a failover
        ("22003", False),  # numeric value out of range: the data
        ("23505", False),  # unique violation: the data
        ("42P01", True),  # undefined table: no message's fault; wait, and alarm
        ("42501", True),  # insufficient privilege
        ("XX000", True),  # internal error
    ],
)
def test_postgresql_errors_are_sorted_by_sqlstate(sqlstate: str, outage: bool) -> None:
    assert is_outage(error(DBAPIError, sqlstate)) is outage


def test_a_lost_connection_is_an_outage_whatever_the_error() -> None:
    assert is_outage(error(IntegrityError, invalidated=True))


def test_sqlite_operational_errors_are_outages_and_data_errors_are_not() -> None:
    assert is_outage(error(OperationalError))  # database is locked, disk I/O error
    assert not is_outage(error(DataError))
    assert not is_outage(error(IntegrityError))


def test_a_value_asyncpg_cannot_encode_is_the_data_not_an_outage() -> None:
    driver = DriverError()
    driver.__cause__ = asyncpg.exceptions.DataError("invalid input for query argument $1")
    assert not is_outage(InterfaceError("INSERT ...", {}, driver))
    assert is_outage(error(InterfaceError))  # any other interface error: the connection
