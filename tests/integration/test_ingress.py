"""The ingress against a real RabbitMQ: handshake, signatures, routing, quarantine, outages."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from yarl import URL

from tests.conftest import SECRETS, VERIFY_TOKEN, IngressClient, start_ingress, with_settings
from tests.helpers import Broker, TcpProxy, drain, sample_bodies, wait_until
from tests.integration.worker_support import queue_depth
from wapipe.ingress.keys import PUBLISHER
from wapipe.shared import topology
from wapipe.shared.schemas.events import Header, event_decoder
from wapipe.shared.settings import Settings
from wapipe.shared.signature import HEADER, sign

LIVE_QUEUES = tuple(queue.name for queue in topology.QUEUES)
# What basic.get can read: not the send shards (single active consumer), which take only jobs.
READABLE_QUEUES = tuple(queue.name for queue in topology.QUEUES if not queue.single_active)


async def post(
    client: IngressClient,
    body: bytes,
    secret: str | None = SECRETS[0],
    signature: str | None = None,
) -> int:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers[HEADER] = signature
    elif secret is not None:
        headers[HEADER] = sign(secret.encode(), body)
    response = await client.post("/webhook", data=body, headers=headers)
    return response.status


async def drain_all(amqp_url: str) -> dict[str, list[bytes]]:
    """Every queue's messages. A single-active-consumer queue (a send shard) cannot be read
    with basic.get: it stands as many empty bodies as it holds (the ingress should put none)."""
    drained: dict[str, list[bytes]] = {}
    for queue in topology.QUEUES:
        if queue.single_active:
            ready, _ = await queue_depth(amqp_url, queue.name)  # nothing consumes it here
            drained[queue.name] = [b""] * ready
        else:
            drained[queue.name] = [m.body for m in await drain(amqp_url, queue.name)]
    return drained


def sample(name: str) -> bytes:
    return next(path for path in sample_bodies() if path.name == name).read_bytes()


# The handshake ------------------------------------------------------------------------------


async def test_handshake_with_right_token_answers_the_challenge(ingress: IngressClient) -> None:
    response = await ingress.get(
        "/webhook",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status == 200
    assert await response.text() == "1158201444"
    assert response.content_type == "text/plain"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
    ],
)
async def test_handshake_refused_otherwise(ingress: IngressClient, params: dict[str, str]) -> None:
    response = await ingress.get("/webhook", params=params)
    assert response.status == 403
    assert "1" not in await response.text()


# Signatures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", SECRETS)
async def test_body_signed_with_either_secret_is_accepted(
    ingress: IngressClient, settings: Settings, secret: str
) -> None:
    assert await post(ingress, sample("status_sent.json"), secret=secret) == 200
    assert len(await drain(settings.amqp_url, "wa.status")) == 1


@pytest.mark.parametrize(
    "signature",
    [
        None,  # missing
        "sha1=" + "0" * 40,  # wrong algorithm
        "sha256=zz" + "0" * 62,  # not hex
        "sha256=" + "0" * 63,  # wrong length
        "sha256=" + "0" * 64,  # well formed, wrong
    ],
)
async def test_bad_signature_answers_401_and_publishes_nothing(
    ingress: IngressClient, settings: Settings, signature: str | None
) -> None:
    body = sample("batch_two_entries_mixed.json")
    status = await post(ingress, body, secret=None, signature=signature)
    assert status == 401
    assert await drain_all(settings.amqp_url) == {queue: [] for queue in LIVE_QUEUES}


async def test_body_signed_with_an_unknown_secret_answers_401(
    ingress: IngressClient, settings: Settings
) -> None:
    assert await post(ingress, sample("status_sent.json"), secret="not-ours") == 401
    assert await drain(settings.amqp_url, "wa.status") == []


async def test_signature_over_reserialised_json_is_refused(ingress: IngressClient) -> None:
    body = sample("message_image.json")  # carries "\/" escapes, as Meta sends them
    reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert reserialised != body
    assert await post(ingress, body, signature=sign(SECRETS[0].encode(), reserialised)) == 401


# Size cap -----------------------------------------------------------------------------------


async def test_oversized_body_answers_413(settings: Settings) -> None:
    client = await start_ingress(with_settings(settings, max_body_bytes=1024))
    try:
        await wait_until(lambda: client.app[PUBLISHER].ready, timeout=10)
        body = b'{"object":"whatsapp_business_account","entry":[]' + b" " * 2048 + b"}"
        assert await post(client, body) == 413

        # No Content-Length: the cap must hold while reading.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b" " * 512

        response = await client.post(
            "/webhook", data=chunks(), headers={HEADER: sign(SECRETS[0].encode(), b"")}
        )
        assert response.status == 413
        assert await drain_all(settings.amqp_url) == {queue: [] for queue in LIVE_QUEUES}
    finally:
        await client.close()


# Routing ------------------------------------------------------------------------------------


async def test_batch_body_puts_each_event_in_its_queue_once(
    ingress: IngressClient, settings: Settings
) -> None:
    assert await post(ingress, sample("batch_two_entries_mixed.json")) == 200
    got = {queue: await drain(settings.amqp_url, queue) for queue in READABLE_QUEUES}

    statuses = {(m.message_id, m.routing_key) for m in got["wa.status"]}
    assert len(got["wa.status"]) == 3
    assert statuses == {
        ("wamid.HBgLMTYzMTU1NTExODEVAgARGBJCQVRDSDAwMDAwMDAwMDEA:sent", "status.sent"),
        ("wamid.HBgLMTYzMTU1NTExODEVAgARGBJCQVRDSDAwMDAwMDAwMDIA:sent", "status.sent"),
        ("wamid.HBgLMTYzMTU1NTExODEVAgARGBJCQVRDSDAwMDAwMDAwMDMA:read", "status.read"),
    }
    messages = [(m.message_id, m.routing_key) for m in got["wa.message"]]
    assert sorted(messages) == [
        ("wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTg0027QjE3RjA5QkQ1NkQzRgA=", "message.text"),
        ("wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTg0028QjE3RjA5QkQ1NkQzRgA=", "message.text"),
    ]
    assert [m.routing_key for m in got["wa.account"]] == ["account.message_template_status_update"]
    assert got["wa.media"] == got["wa.quarantine"] == got["wa.unroutable"] == []

    second_waba = next(m for m in got["wa.status"] if m.routing_key == "status.read")
    assert second_waba.headers[Header.WABA_ID] == "109876543210999"
    assert second_waba.headers[Header.PHONE_NUMBER_ID] == "118765432109999"
    assert float(str(second_waba.headers[Header.RECEIVED_AT])) == pytest.approx(time.time(), abs=60)
    assert second_waba.delivery_mode == 2  # persistent
    event = event_decoder.decode(second_waba.body)
    assert json.loads(bytes(event.contact))["user_id"] == "BR.88120034561209871123"


async def test_message_event_carries_its_contact_and_metadata(
    ingress: IngressClient, settings: Settings
) -> None:
    assert await post(ingress, sample("message_text.json")) == 200
    [message] = await drain(settings.amqp_url, "wa.message")
    event = event_decoder.decode(message.body)
    raw = json.loads(sample("message_text.json"))["entry"][0]["changes"][0]["value"]
    assert event.kind == "message"
    assert event.key == raw["messages"][0]["id"] == message.message_id
    assert json.loads(bytes(event.payload)) == raw["messages"][0]
    assert json.loads(bytes(event.contact)) == raw["contacts"][0]
    assert event.phone_number_id == raw["metadata"]["phone_number_id"]
    assert event.display_phone_number == raw["metadata"]["display_phone_number"]


@pytest.mark.parametrize("name", [path.name for path in sample_bodies()])
async def test_every_sample_body_is_accepted_and_routed(
    ingress: IngressClient, settings: Settings, name: str
) -> None:
    body = sample(name)
    assert await post(ingress, body) == 200
    got = await drain_all(settings.amqp_url)
    assert got["wa.quarantine"] == got["wa.unroutable"] == []
    changes = [change for entry in json.loads(body)["entry"] for change in entry["changes"]]
    values = [change["value"] for change in changes if change["field"] == "messages"]
    expected = {
        "wa.status": sum(len(v.get("statuses", [])) for v in values),
        "wa.message": sum(len(v.get("messages", [])) for v in values),
        "wa.media": sum(
            m["type"] in topology.MEDIA_TYPES for v in values for m in v.get("messages", [])
        ),
        # every other field, and value-level errors or an empty `messages` value, whole
        "wa.account": sum(change["field"] != "messages" for change in changes)
        + sum(
            bool(v.get("errors")) or not (v.get("statuses") or v.get("messages")) for v in values
        ),
    }
    assert {queue: len(got[queue]) for queue in expected} == expected
    assert sum(expected.values()) >= 1


async def test_media_message_also_reaches_the_media_queue(
    ingress: IngressClient, settings: Settings
) -> None:
    assert await post(ingress, sample("message_image.json")) == 200
    [in_media] = await drain(settings.amqp_url, "wa.media")
    [in_message] = await drain(settings.amqp_url, "wa.message")
    assert in_media.routing_key == in_message.routing_key == "message.image"
    assert in_media.message_id == in_message.message_id


async def test_unknown_field_is_kept_as_account_event(
    ingress: IngressClient, settings: Settings
) -> None:
    assert await post(ingress, sample("unknown_field_future.json")) == 200
    [message] = await drain(settings.amqp_url, "wa.account")
    assert message.routing_key == "account.some_future_field"
    assert json.loads(bytes(event_decoder.decode(message.body).payload)) == {
        "anything": {"nested": [1, 2, 3]}
    }


async def test_same_body_twice_publishes_the_same_keys(
    ingress: IngressClient, settings: Settings
) -> None:
    body = sample("template_status_approved.json")
    assert await post(ingress, body) == 200
    assert await post(ingress, body) == 200
    first, second = await drain(settings.amqp_url, "wa.account")
    assert first.message_id == second.message_id


# Quarantine ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"this is not json",
        b'{"object":"page","entry":[]}',
        b'{"object":"whatsapp_business_account","entry":[{"changes":[]}]}',
    ],
)
async def test_signed_body_that_is_not_a_webhook_is_quarantined(
    ingress: IngressClient, settings: Settings, body: bytes
) -> None:
    assert await post(ingress, body) == 200
    got = await drain_all(settings.amqp_url)
    assert got["wa.quarantine"] == [body]
    assert sum(len(bodies) for bodies in got.values()) == 1
    metrics = await (await ingress.get("/metrics")).text()
    assert 'wapipe_ingress_requests_total{outcome="quarantined"} 1.0' in metrics


def one_message(wamid: str, field: str = "messages") -> bytes:
    message = {"from": "16315551181", "id": wamid, "timestamp": "1763990000", "type": "text"}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550101234", "phone_number_id": "118765432109876"},
        "messages": [message],
    }
    change = {"field": field, "value": value}
    entry = {"id": "109876543210987", "changes": [change]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (one_message("wamid." + "A" * 250), "message key is 256 bytes"),
        (one_message("wamid." + "é" * 125), "message key is 256 bytes"),
        (one_message(""), "message key is empty"),
        (one_message("wamid.A", field="f" * 300), "account key is 333 bytes"),
        (one_message("wamid.A").replace(b"109876543210987", b"1" * 300), "entry id is 300 bytes"),
        (one_message("wamid.A").replace(b"wamid.A", b"wamid.\xff"), "not UTF-8"),
    ],
)
async def test_signed_body_amqp_cannot_carry_is_quarantined_with_200(
    ingress: IngressClient, settings: Settings, body: bytes, reason: str
) -> None:
    assert await post(ingress, body) == 200
    [kept] = await drain(settings.amqp_url, "wa.quarantine")
    assert kept.body == body
    assert str(kept.headers[Header.QUARANTINE_REASON]).startswith(reason)
    got = await drain_all(settings.amqp_url)
    assert sum(len(bodies) for bodies in got.values()) == 0  # nothing else published
    metrics = await (await ingress.get("/metrics")).text()
    assert 'wapipe_ingress_requests_total{outcome="quarantined"} 1.0' in metrics


@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ('{"a":', "}")])
async def test_signed_body_nested_50000_deep_is_quarantined_with_200(
    ingress: IngressClient, settings: Settings, opening: str, closing: str
) -> None:
    deep = opening * 50_000 + "1" + closing * 50_000
    body = one_message("wamid.A").replace(b'"type": "text"', f'"text": {deep}'.encode())
    assert await post(ingress, body) == 200
    [kept] = await drain(settings.amqp_url, "wa.quarantine")
    assert kept.body == body
    assert kept.headers[Header.QUARANTINE_REASON] == "nested too deep to decode"


async def test_ids_of_255_bytes_are_routed(ingress: IngressClient, settings: Settings) -> None:
    wamid = "wamid." + "é" * 124 + "A"  # 255 bytes in 131 characters
    assert await post(ingress, one_message(wamid)) == 200
    [message] = await drain(settings.amqp_url, "wa.message")
    assert message.message_id == wamid
    assert await drain(settings.amqp_url, "wa.quarantine") == []


@pytest.mark.parametrize("field", ["user_preferences", "smb_message_echoes", "calls"])
async def test_other_field_with_metadata_carries_the_phone_number_id_header(
    ingress: IngressClient, settings: Settings, field: str
) -> None:
    body = one_message("wamid.A", field=field)
    if field == "user_preferences":
        body = sample("user_preferences_stop_marketing.json")
    assert await post(ingress, body) == 200
    [message] = await drain(settings.amqp_url, "wa.account")
    assert message.routing_key == f"account.{field}"
    assert message.headers[Header.PHONE_NUMBER_ID] == "118765432109876"
    assert event_decoder.decode(message.body).phone_number_id == "118765432109876"


# Health, readiness, metrics ------------------------------------------------------------------


async def test_health_ready_and_metrics(ingress: IngressClient) -> None:
    assert (await ingress.get("/healthz")).status == 200
    assert (await ingress.get("/readyz")).status == 200
    assert await post(ingress, sample("batch_two_entries_mixed.json")) == 200
    text = await (await ingress.get("/metrics")).text()
    assert 'wapipe_ingress_requests_total{outcome="ok"} 1.0' in text
    assert 'wapipe_ingress_events_total{kind="status"} 3.0' in text
    assert 'wapipe_ingress_events_total{kind="message"} 2.0' in text
    assert "wapipe_ingress_publish_seconds_count 1.0" in text
    assert "wapipe_ingress_in_flight 0.0" in text


# Outages ------------------------------------------------------------------------------------


@asynccontextmanager
async def behind_proxy(
    settings: Settings, *, connected: bool = True, **changes: Any
) -> AsyncIterator[tuple[IngressClient, TcpProxy]]:
    """An ingress whose broker is reached through a TCP proxy the test can cut or stall."""
    target = URL(settings.amqp_url)
    async with TcpProxy(target.host or "127.0.0.1", target.port or 5672) as proxy:
        if not connected:
            proxy.cut()
        via_proxy = str(target.with_host("127.0.0.1").with_port(proxy.port))
        client = await start_ingress(with_settings(settings, amqp_url=via_proxy, **changes))
        try:
            if connected:
                await wait_until(lambda: client.app[PUBLISHER].ready, timeout=10)
            yield client, proxy
        finally:
            proxy.restore()
            await client.close()


async def test_broker_cut_off_answers_503_then_recovers_without_restart(settings: Settings) -> None:
    async with behind_proxy(settings) as (client, proxy):
        body = sample("status_delivered.json")
        assert await post(client, body) == 200

        proxy.cut()
        await wait_until(lambda: not client.app[PUBLISHER].ready, timeout=5)
        started = time.monotonic()
        assert await post(client, body) == 503
        assert time.monotonic() - started < settings.confirm_timeout_s + 0.25
        assert (await client.get("/readyz")).status == 503

        proxy.restore()
        await wait_until(lambda: client.app[PUBLISHER].ready, timeout=15)
        assert (await client.get("/readyz")).status == 200
        assert await post(client, body) == 200
    assert len(await drain(settings.amqp_url, "wa.status")) == 2


async def test_stalled_broker_answers_503_within_the_confirm_timeout(settings: Settings) -> None:
    async with behind_proxy(settings) as (client, proxy):
        proxy.stall()
        started = time.monotonic()
        assert await post(client, sample("status_read.json")) == 503
        elapsed = time.monotonic() - started
        assert settings.confirm_timeout_s <= elapsed < settings.confirm_timeout_s + 0.5


async def test_broker_lost_while_a_confirm_is_pending_answers_503(settings: Settings) -> None:
    async with behind_proxy(settings, confirm_timeout_s=5.0) as (client, proxy):
        proxy.stall()
        pending = asyncio.create_task(post(client, sample("status_read.json")))

        async def publishing() -> bool:
            metrics = await (await client.get("/metrics")).text()
            return "wapipe_ingress_in_flight 1.0" in metrics

        await wait_until(publishing, timeout=5)
        proxy.cut()
        assert await asyncio.wait_for(pending, timeout=4) == 503


async def test_broker_cut_under_load_answers_only_200_or_503(settings: Settings) -> None:
    async with behind_proxy(settings) as (client, proxy):
        bodies = [sample("status_sent.json"), sample("batch_two_entries_mixed.json")]
        posts = [asyncio.create_task(post(client, bodies[i % 2])) for i in range(600)]

        async def some_answered() -> bool:
            return sum(task.done() for task in posts) >= 50

        await wait_until(some_answered, timeout=20)
        proxy.cut()
        answers = await asyncio.gather(*posts)
    assert set(answers) <= {200, 503}
    assert 200 in answers


async def test_negative_confirm_answers_503(settings: Settings, broker: Broker) -> None:
    vhost = URL(settings.amqp_url).path.lstrip("/")
    client = await start_ingress(settings)
    try:
        await wait_until(lambda: client.app[PUBLISHER].ready, timeout=10)
        # A length limit of 0 on wa.status: the queue refuses (x-overflow: reject-publish).
        broker.api(
            "PUT",
            f"/policies/{vhost}/full",
            {"pattern": "^wa\\.status$", "apply-to": "queues", "definition": {"max-length": 0}},
        )

        async def refused() -> bool:
            return await post(client, sample("status_sent.json")) == 503

        await wait_until(refused, timeout=10, step=0.1)
        assert await post(client, sample("template_status_approved.json")) == 200  # others flow
    finally:
        await client.close()


async def test_stalled_broker_fails_readiness_until_a_confirm_comes(settings: Settings) -> None:
    async with behind_proxy(settings) as (client, proxy):
        proxy.stall()
        assert await post(client, sample("status_read.json")) == 503
        assert (await client.get("/readyz")).status == 503
        proxy.restore()
        assert await post(client, sample("status_read.json")) == 200
        assert (await client.get("/readyz")).status == 200


async def test_ingress_started_without_broker_answers_503_until_it_comes(
    settings: Settings,
) -> None:
    async with behind_proxy(settings, connected=False) as (client, proxy):
        assert (await client.get("/readyz")).status == 503
        assert await post(client, sample("status_sent.json")) == 503
        proxy.restore()
        await wait_until(lambda: client.app[PUBLISHER].ready, timeout=15)
        assert await post(client, sample("status_sent.json")) == 200
