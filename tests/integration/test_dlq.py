"""Dead letters against the real broker: list, peek, replay (all, some, into a full queue, with the
broker going away), purge, and `wapipe dlq` as a process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aio_pika
import pytest
from yarl import URL

from tests.helpers import TcpProxy, drain, publish_raw, wait_until
from wapipe.shared import topology
from wapipe.shared.settings import Settings
from wapipe.workers import deadletters
from wapipe.workers.deadletters import REPLAYS_HEADER, ReplayStopped, UnknownQueue
from wapipe.workers.runtime import DeadLetterHeader

FAILED_AT = 1763990000.25


def dead_letter(
    message_id: str, queue: str = "wa.status", routing_key: str = "status.sent"
) -> tuple[str, aio_pika.Message]:
    """A dead letter as workers/runtime.py publishes it: to wa.dlx, keyed by its queue."""
    return queue, aio_pika.Message(
        json.dumps({"key": message_id}).encode(),
        message_id=message_id,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={
            "x-wa-waba-id": "109876543210987",
            DeadLetterHeader.ERROR: f"ValueError: bad {message_id}",
            DeadLetterHeader.ATTEMPTS: 5,
            DeadLetterHeader.FAILED_AT: f"{FAILED_AT:.6f}",
            DeadLetterHeader.QUEUE: queue,
            DeadLetterHeader.ROUTING_KEY: routing_key,
        },
    )


async def put_dead_letters(url: str, count: int, queue: str = "wa.status") -> list[str]:
    ids = [f"{queue}-{n}" for n in range(count)]
    await publish_raw(url, topology.DEAD_LETTER_EXCHANGE, [dead_letter(i, queue) for i in ids])
    return ids


async def depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def holds(url: str, queue: str, count: int) -> None:
    async def settled() -> bool:
        return await depth(url, queue) == count

    await wait_until(settled, timeout=10)


async def broker_dead_letters(url: str, message_id: str, *, requeues: int = 0) -> None:
    """Publish an event to wa.status; have the broker dead-letter it: after ``requeues``
    redeliveries past the delivery limit, or at once by a reject."""
    before = await depth(url, "wa.status.dlq")
    await publish_raw(
        url,
        topology.EVENTS_EXCHANGE,
        [("status.read", aio_pika.Message(b'{"v": 1}', message_id=message_id))],
    )
    connection = await aio_pika.connect(url)
    async with connection:
        live = await (await connection.channel()).get_queue("wa.status")
        for _ in range(requeues):
            message = await live.get(timeout=5, fail=False)
            if message is None:  # past the delivery limit: the broker took it away
                break
            await message.reject(requeue=True)  # a failed delivery, counted by the queue
        else:
            await (await live.get(timeout=5)).reject(requeue=False)
    await holds(url, "wa.status.dlq", before + 1)


@pytest.fixture
async def url(settings: Settings) -> str:
    await topology.declare_at(settings.amqp_url)
    return settings.amqp_url


async def test_list_counts_the_dead_letters_of_every_queue(url: str) -> None:
    await put_dead_letters(url, 3, "wa.status")
    await put_dead_letters(url, 1, "wa.message")

    queues = await deadletters.list_queues(url)

    assert [q.queue for q in queues] == [q.name for q in topology.QUEUES]
    assert [q.name for q in queues] == [q.dead_letter_queue for q in topology.QUEUES]
    counts = {q.queue: q.messages for q in queues}
    assert counts.pop("wa.status") == 3
    assert counts.pop("wa.message") == 1
    assert set(counts.values()) == {0}


async def test_show_peeks_without_removing_and_reports_the_error_and_attempts(url: str) -> None:
    ids = await put_dead_letters(url, 3)

    first_two = await deadletters.show(url, "wa.status", limit=2)
    everything = await deadletters.show(url, "wa.status.dlq", limit=10)

    assert [d.message_id for d in first_two] == ids[:2]
    assert sorted(d.message_id or "" for d in everything) == ids  # each once, none twice
    shown = first_two[0]
    assert shown.error == f"ValueError: bad {ids[0]}"
    assert shown.attempts == 5
    assert shown.routing_key == "status.sent"
    assert shown.queue == "wa.status"
    assert shown.failed_at == pytest.approx(FAILED_AT)
    assert shown.replays == 0
    assert json.loads(shown.body) == {"key": ids[0]}
    assert shown.body_size == len(shown.body.encode())
    await holds(url, "wa.status.dlq", 3)
    assert sorted(m.message_id or "" for m in await drain(url, "wa.status.dlq")) == ids


async def test_show_explains_what_the_broker_dead_lettered(url: str) -> None:
    await broker_dead_letters(url, "rejected-one")
    await broker_dead_letters(url, "poison-one", requeues=topology.DELIVERY_LIMIT + 5)

    rejected, poison = await deadletters.show(url, "wa.status")

    assert (rejected.message_id, rejected.error) == ("rejected-one", "rejected")
    assert (poison.message_id, poison.error) == ("poison-one", "delivery_limit")
    for shown in (rejected, poison):
        assert shown.routing_key == "status.read"  # from the broker's x-death
        assert shown.queue == "wa.status"
        assert shown.attempts is None
        assert shown.failed_at is not None
        assert abs(shown.failed_at - time.time()) < 600


async def test_replay_moves_dead_letters_back_intact_and_empties_the_dlq(url: str) -> None:
    ids = await put_dead_letters(url, 3)
    await broker_dead_letters(url, "rejected-one")

    assert await deadletters.replay(url, "wa.status") == 4

    await holds(url, "wa.status.dlq", 0)
    replayed = await drain(url, "wa.status")
    assert [m.message_id for m in replayed] == [*ids, "rejected-one"]
    for message in replayed[:3]:
        assert json.loads(message.body) == {"key": message.message_id}
        assert message.content_type == "application/json"
        assert message.headers["x-wa-waba-id"] == "109876543210987"
        assert message.headers[DeadLetterHeader.ATTEMPTS] == 5
        assert message.headers[DeadLetterHeader.ROUTING_KEY] == "status.sent"
    for message in replayed:
        assert message.routing_key == "wa.status"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers[REPLAYS_HEADER] == 1
        assert not any(
            name in (DeadLetterHeader.ERROR, DeadLetterHeader.FAILED_AT, "x-death")
            or name.startswith("x-first-death-")
            for name in message.headers
        )
    assert replayed[3].body == b'{"v": 1}'


async def test_a_message_replayed_twice_says_so(url: str) -> None:
    await put_dead_letters(url, 1)
    await deadletters.replay(url, "wa.status")
    connection = await aio_pika.connect(url)
    async with connection:  # it fails again: the broker dead-letters it with its headers
        live = await (await connection.channel()).get_queue("wa.status")
        await (await live.get(timeout=5)).reject(requeue=False)
    await holds(url, "wa.status.dlq", 1)
    [again] = await deadletters.show(url, "wa.status")
    assert (again.replays, again.error) == (1, "rejected")

    assert await deadletters.replay(url, "wa.status") == 1

    [message] = await drain(url, "wa.status")
    assert message.headers[REPLAYS_HEADER] == 2
    assert "x-death" not in message.headers


async def test_replay_with_a_limit_moves_only_that_many_from_the_head(url: str) -> None:
    ids = await put_dead_letters(url, 5)

    assert await deadletters.replay(url, "wa.status", limit=2) == 2

    await holds(url, "wa.status.dlq", 3)
    assert [m.message_id for m in await drain(url, "wa.status")] == ids[:2]
    assert [m.message_id for m in await drain(url, "wa.status.dlq")] == ids[2:]


async def test_replay_into_a_full_queue_stops_and_keeps_the_rest(url: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:  # wa.status as a classic queue of two, refusing more: full at once
        channel = await connection.channel()
        await channel.queue_delete("wa.status")
        await channel.declare_queue(
            "wa.status", durable=True, arguments={"x-max-length": 2, "x-overflow": "reject-publish"}
        )
    ids = await put_dead_letters(url, 5)

    with pytest.raises(ReplayStopped, match="refused") as stopped:
        await deadletters.replay(url, "wa.status")

    assert stopped.value.replayed == 2
    await holds(url, "wa.status.dlq", 3)
    moved = [m.message_id for m in await drain(url, "wa.status")]
    kept = [m.message_id or "" for m in await drain(url, "wa.status.dlq")]
    assert moved == ids[:2]
    assert sorted(kept) == ids[2:]


async def test_replay_loses_nothing_when_the_broker_goes_away_midway(url: str) -> None:
    ids = await put_dead_letters(url, 3000)
    target = URL(url)
    async with TcpProxy(target.host or "127.0.0.1", target.port or 5672) as proxy:
        through_proxy = str(target.with_host("127.0.0.1").with_port(proxy.port))
        replaying = asyncio.create_task(deadletters.replay(through_proxy, "wa.status"))

        async def under_way() -> bool:
            return await depth(url, "wa.status") > 0

        await wait_until(under_way, timeout=10, step=0.005)
        proxy.cut()
        with pytest.raises((ConnectionError, RuntimeError)):
            await asyncio.wait_for(replaying, timeout=10)

    async def all_back() -> bool:  # the unacked ones return to the dlq when the broker notices
        return await depth(url, "wa.status") + await depth(url, "wa.status.dlq") >= len(ids)

    await wait_until(all_back, timeout=10)
    moved = [m.message_id for m in await drain(url, "wa.status")]
    kept = [m.message_id for m in await drain(url, "wa.status.dlq")]
    assert 0 < len(moved) < len(ids)
    assert set(moved) | set(kept) == set(ids)  # at least once: a confirmed, unacked one is in both


async def test_replay_to_a_missing_queue_moves_nothing(url: str) -> None:
    await put_dead_letters(url, 2)
    connection = await aio_pika.connect(url)
    async with connection:
        await (await connection.channel()).queue_delete("wa.status")

    with pytest.raises(deadletters.QueueMissing, match="wapipe topology"):
        await deadletters.replay(url, "wa.status")

    await holds(url, "wa.status.dlq", 2)


async def test_purge_empties_one_dead_letter_queue_only(url: str) -> None:
    await put_dead_letters(url, 4, "wa.status")
    await put_dead_letters(url, 1, "wa.account")

    assert await deadletters.purge(url, "wa.status.dlq") == 4

    await holds(url, "wa.status.dlq", 0)
    await holds(url, "wa.account.dlq", 1)


async def test_an_unknown_queue_name_lists_the_known_ones(url: str) -> None:
    for action in (
        deadletters.show(url, "wa.statuses"),
        deadletters.replay(url, "wa.statuses"),
        deadletters.purge(url, "wa.statuses"),
    ):
        with pytest.raises(UnknownQueue) as unknown:
            await action
        message = str(unknown.value)
        assert "'wa.statuses'" in message
        assert all(q.name in message and q.dead_letter_queue in message for q in topology.QUEUES)


# --- `wapipe dlq` as a process -------------------------------------------------------------------


async def wapipe(url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wapipe",
        "dlq",
        *args,
        env={**os.environ, "WAPIPE_AMQP_URL": url, "WAPIPE_LOG_FORMAT": "json"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_list_prints_a_table_of_counts(url: str) -> None:
    await put_dead_letters(url, 2)

    code, out, _ = await wapipe(url, "list")

    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["queue", "dead", "letters"]
    counts = {row.split()[0]: int(row.split()[1]) for row in rows}
    assert counts == {q.name: 2 if q.name == "wa.status" else 0 for q in topology.QUEUES}


async def test_cli_replay_moves_them_and_says_how_many(url: str) -> None:
    ids = await put_dead_letters(url, 3)

    code, out, _ = await wapipe(url, "replay", "wa.status", "--limit", "2")

    assert (code, out.strip()) == (0, "replayed 2 from wa.status.dlq to wa.status")
    assert [m.message_id for m in await drain(url, "wa.status")] == ids[:2]
    code, out, _ = await wapipe(url, "replay", "wa.status.dlq")
    assert (code, out.strip()) == (0, "replayed 1 from wa.status.dlq to wa.status")
    await holds(url, "wa.status.dlq", 0)


async def test_cli_show_json_peeks(url: str) -> None:
    ids = await put_dead_letters(url, 2)

    code, out, _ = await wapipe(url, "show", "wa.status", "--json", "--limit", "5")

    assert code == 0
    shown = json.loads(out)
    assert [d["message_id"] for d in shown] == ids
    assert shown[0]["attempts"] == 5
    assert shown[0]["error"] == f"ValueError: bad {ids[0]}"
    await holds(url, "wa.status.dlq", 2)


async def test_cli_purge_refuses_without_yes_then_purges(url: str) -> None:
    await put_dead_letters(url, 2)

    code, out, err = await wapipe(url, "purge", "wa.status")
    assert (code, out) == (2, "")
    assert "--yes" in err
    await holds(url, "wa.status.dlq", 2)

    code, out, _ = await wapipe(url, "purge", "wa.status", "--yes")
    assert (code, out.strip()) == (0, "purged 2 from wa.status.dlq")
    await holds(url, "wa.status.dlq", 0)


async def test_cli_unknown_queue_exits_2_with_the_known_ones(url: str) -> None:
    code, out, err = await wapipe(url, "show", "wa.nope")

    assert (code, out) == (2, "")
    assert "unknown queue 'wa.nope'" in err
    assert "wa.status.dlq" in err
