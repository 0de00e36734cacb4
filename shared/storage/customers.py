"""One customer per person, across the ids Meta names them by.

A person may write from a phone number (``wa_id``), be known by a business-scoped user id
(BSUID) and a parent BSUID, change their BSUID or their number (docs/cloudapi/usernames.md).
Every set of ids seen together in one webhook (a message's sender, a status's recipient, a
system message's old and new ids) is one *sighting*; ``link`` ties a sighting's ids to one
customer, merging customers that turn out to be one. ``customer_id`` is the first id the customer
was known by. Workers link in the transaction that stores the event, so a repeat links nothing
new; two workers linking at once both end on the same customer (the smaller id wins).

``identities_of`` answers "every id of this person", which ``wapipe conversation`` reads by.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from typing import Final

import msgspec
from sqlalchemy import Dialect, select, update

from wapipe.shared.schemas.jobs import is_bsuid
from wapipe.shared.storage import schema
from wapipe.shared.storage.statements import (
    Connection,
    Prepared,
    execute_many,
    in_ids,
    insert_for,
    prepare,
    select_in,
)

Sighting = frozenset[str]  # ids of one person, seen together


def sighting(ids: Iterable[str | None]) -> Sighting:
    return frozenset(i for i in ids if i)


def identity_kind(identity: str) -> str:
    if is_bsuid(identity):
        return "parent_bsuid" if identity[2:7] == ".ENT." else "bsuid"
    return "phone"


async def link(connection: Connection, sightings: Iterable[Sighting], at: float) -> None:
    """Tie each sighting's ids to one customer, in the caller's transaction.

    One look-up for the whole batch first: a sighting whose ids all belong to one customer
    already (the common case: a person writing again) needs nothing more. A merge by an earlier
    sighting of the batch moves all of a customer's ids at once, so that stays true. A sighting
    of ids nobody knows, sharing none with another sighting of the batch (a first contact), is a
    new customer whatever the others do: all of those are linked together, in one insert and one
    look-up. The rest are linked one by one, in order.
    """
    pending = sorted({ids for ids in sightings if ids}, key=sorted)
    if not pending:
        return
    owner = await _owner_of(connection, frozenset().union(*pending))
    unsettled = [ids for ids in pending if not _one_customer(ids, owner)]
    seen = Counter(i for ids in unsettled for i in ids)
    new = [ids for ids in unsettled if all(seen[i] == 1 and i not in owner for i in ids)]
    if new:
        await _link_new(connection, new, at)
    linked = set(new)
    for ids in unsettled:
        if ids not in linked:
            await _link(connection, sorted(ids), at)


def _one_customer(ids: Sighting, owner: dict[str, str]) -> bool:
    return ids <= owner.keys() and len({owner[i] for i in ids}) == 1


async def _owner_of(connection: Connection, ids: Iterable[str]) -> dict[str, str]:
    """Each known id's customer."""
    rows = await select_in(connection, _OWNERS, sorted(ids))
    return {row.identity: row.customer_id for row in rows}


_OWNERS: Final = select(
    schema.customer_identities.c.identity, schema.customer_identities.c.customer_id
).where(in_ids(schema.customer_identities.c.identity))


class IdentityRow(msgspec.Struct, frozen=True, kw_only=True):
    identity: str
    kind: str
    customer_id: str
    linked_at: float


def _rows(ids: Iterable[str], customer_id: str, at: float) -> list[IdentityRow]:
    return [
        IdentityRow(identity=i, kind=identity_kind(i), customer_id=customer_id, linked_at=at)
        for i in ids
    ]


async def _link(connection: Connection, ids: Sequence[str], at: float) -> None:
    owners = set((await _owner_of(connection, ids)).values())
    candidate = min(owners) if owners else ids[0]
    await execute_many(
        connection, _insert(connection.dialect), _rows(ids, candidate, at), "identity"
    )
    # Read again: another worker may have linked some of these ids meanwhile.
    await _merge(connection, set((await _owner_of(connection, ids)).values()), at)


async def _link_new(connection: Connection, sightings: Sequence[Sighting], at: float) -> None:
    """Sightings of ids nobody knew, none sharing an id: each a new customer named by its
    smallest id, unless another worker linked some of its ids meanwhile."""
    rows = [row for ids in sightings for row in _rows(ids, min(ids), at)]
    await execute_many(connection, _insert(connection.dialect), rows, "identity")
    owner = await _owner_of(connection, [row.identity for row in rows])
    for ids in sightings:
        await _merge(connection, {owner[i] for i in ids}, at)


async def _merge(connection: Connection, owners: Collection[str], at: float) -> None:
    """One person known as several customers until now: merged into the smallest."""
    if len(owners) > 1:
        table = schema.customer_identities
        target = min(owners)
        await connection.execute(
            update(table)
            .where(table.c.customer_id.in_(set(owners) - {target}))
            .values(customer_id=target, linked_at=at)
        )


@lru_cache(maxsize=8)
def _insert(dialect: Dialect) -> Prepared:
    statement = insert_for(dialect, schema.customer_identities)
    return prepare(
        statement.on_conflict_do_nothing(index_elements=["identity"]), dialect, IdentityRow
    )


async def identities_of_customer(connection: Connection, customer_id: str) -> set[str]:
    table = schema.customer_identities.c
    query = select(table.identity).where(table.customer_id == customer_id)
    return set((await connection.execute(query)).scalars())


async def identities_of(connection: Connection, identity: str) -> set[str]:
    """Every id of the customer ``identity`` names (a phone number or a BSUID); just it when
    no webhook tied it to anyone yet."""
    owner = await _owner_of(connection, [identity])
    if not owner:
        return {identity}
    return await identities_of_customer(connection, owner[identity]) | {identity}
