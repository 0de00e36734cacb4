"""The sandbox as a Cloud API: sends and their answers, limits, and signed webhooks back."""

from __future__ import annotations

import json

import pytest

from tests.helpers import wait_until
from tests.integration.sandbox_support import (
    CUSTOMER,
    GRAPH,
    Receiver,
    SandboxClient,
    open_window,
    phone_number_id,
    response_sample,
    same_keys,
    send,
    start_sandbox,
    text_to,
)
from wapipe.sandbox.errors import GraphError, token_invalid
from wapipe.sandbox.keys import SENDER, WORLD
from wapipe.sandbox.webhooks import Chaos


async def test_wrong_token_answers_as_meta_does(sandbox: SandboxClient) -> None:
    status, body = await send(sandbox, text_to(), token="wrong")
    assert status == 401
    assert body["error"]["code"] == 190
    assert same_keys(body, response_sample("err_190_token_expired.json"))


async def test_send_answers_the_success_shape_then_sent_delivered_read(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    open_window(sandbox)
    status, body = await send(
        sandbox, {**text_to("+1 631-555-1181"), "biz_opaque_callback_data": "job:1"}
    )
    assert status == 200
    assert same_keys(body, response_sample("send_ok.json"))
    assert body["contacts"] == [{"input": "+1 631-555-1181", "wa_id": CUSTOMER}]
    wamid = body["messages"][0]["id"]

    got = receiver[0]
    await wait_until(lambda: len(got.statuses()) == 3, timeout=5)
    assert [(w, s) for w, s, _ in got.statuses()] == [
        (wamid, "sent"),
        (wamid, "delivered"),
        (wamid, "read"),
    ]
    assert all(got.signed)
    sent = got.statuses()[0][2]
    assert "conversation" not in sent  # per-message pricing: only entry point windows have one
    assert sent["pricing"] == {
        "billable": False,
        "pricing_model": "PMP",
        "category": "service",
        "type": "free_customer_service",
    }
    assert sent["biz_opaque_callback_data"] == "job:1"


@pytest.mark.parametrize(
    ("prepare", "to", "code"),
    [
        ("none", "19998887777", 131026),  # nobody has this number
        ("none", CUSTOMER, 131047),  # the customer has not written in 24 hours
    ],
)
async def test_refusals_after_acceptance_come_as_failed_statuses(
    sandbox: SandboxClient, receiver: tuple[Receiver, str], prepare: str, to: str, code: int
) -> None:
    status, body = await send(sandbox, text_to(to))
    assert status == 200
    wamid = body["messages"][0]["id"]
    await wait_until(lambda: len(receiver[0].statuses()) == 1, timeout=5)
    [(got_wamid, got_status, raw)] = receiver[0].statuses()
    assert (got_wamid, got_status) == (wamid, "failed")
    assert raw["errors"][0]["code"] == code
    assert set(raw["errors"][0]) == {"code", "title", "message", "error_data", "href"}
    delivered = receiver[0].bodies[0]
    assert b"https:\\/\\/developers" in delivered  # slashes escaped as Meta does
    assert b"https://" not in delivered


async def test_window_closes_after_24_hours_of_the_sandbox_clock(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    open_window(sandbox)
    response = await sandbox.post("/_sandbox/clock", json={"advance_s": 24 * 3600 + 1})
    assert response.status == 200
    await send(sandbox, text_to())
    await wait_until(lambda: len(receiver[0].statuses()) == 1, timeout=5)
    assert receiver[0].statuses()[0][2]["errors"][0]["code"] == 131047


async def test_81_sends_in_one_second_at_80_per_second_get_exactly_one_130429(
    sandbox: SandboxClient,
) -> None:
    assert (await sandbox.post("/_sandbox/clock", json={"freeze": True})).status == 200
    answers = [await send(sandbox, text_to(f"1555000{i:04d}")) for i in range(81)]
    refused = [body for status, body in answers if status != 200]
    assert len(refused) == 1
    assert answers[-1][0] == 400
    assert refused[0]["error"]["code"] == 130429
    assert same_keys(refused[0], response_sample("err_130429_throughput.json"))
    counts = await (await sandbox.get("/_sandbox/counts")).json()
    assert counts[phone_number_id(sandbox)]["busiest_second"] == 80
    assert counts[phone_number_id(sandbox)]["throughput_refused"] == 1


async def test_pair_rate_answers_131056_on_the_message_that_breaks_it(
    receiver: tuple[Receiver, str],
) -> None:
    client = await start_sandbox(receiver[1], pair_burst=3, pair_interval_s=6.0)
    try:
        await client.post("/_sandbox/clock", json={"freeze": True})
        answers = [(await send(client, text_to()))[0] for _ in range(4)]
        assert answers == [200, 200, 200, 400]
        _, body = await send(client, text_to())
        assert body["error"]["code"] == 131056
        assert same_keys(body, response_sample("err_131056_pair_rate.json"))
        assert (await send(client, text_to("16315550000")))[0] == 200  # others flow
        await client.post("/_sandbox/clock", json={"advance_s": 6})
        assert (await send(client, text_to()))[0] == 200
    finally:
        await client.close()


async def test_receiver_answering_500_twice_gets_the_webhook_on_the_third_try(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    receiver[0].answers = [500, 500]
    status, _ = await send(sandbox, text_to("19998887777"))  # one failed status: one webhook
    assert status == 200
    await wait_until(lambda: len(receiver[0].bodies) == 3, timeout=5)
    assert receiver[0].bodies[0] == receiver[0].bodies[1] == receiver[0].bodies[2]
    deliveries = await (await sandbox.get("/_sandbox/webhooks")).json()
    assert [a["status"] for a in deliveries[0]["attempts"]] == [500, 500, 200]
    assert deliveries[0]["delivered"] is True


async def test_a_seed_replays_the_same_duplicates_and_reorders(
    receiver: tuple[Receiver, str],
) -> None:
    def outline(statuses: list[str]) -> tuple[int, bool]:
        return len(statuses), statuses.index("read") < statuses.index("delivered")

    runs = []
    for _ in range(2):
        receiver[0].bodies.clear()
        chaos = Chaos(seed=7, delay_s=(0.05, 0.1), duplicate_rate=0.3, reorder_rate=0.5)
        client = await start_sandbox(receiver[1], chaos=chaos)
        try:
            customers = [f"1555111{i:04d}" for i in range(10)]
            for wa_id in customers:
                client.app[WORLD].add_customer(wa_id, "C")
                open_window(client, wa_id)
                await send(client, text_to(wa_id))
            await wait_until(client.app[SENDER].idle, timeout=10)
            per_message: dict[str, list[str]] = {wamid: [] for wamid in client.app[WORLD].sent}
            for wamid, status, _ in receiver[0].statuses():
                per_message[wamid].append(status)
            runs.append([outline(statuses) for statuses in per_message.values()])
        finally:
            await client.close()
    assert runs[0] == runs[1]
    assert any(reordered for _, reordered in runs[0])  # the chaos did something
    assert any(count > 3 for count, _ in runs[0])


def test_error_sample_shapes_are_what_the_sandbox_builds() -> None:
    for name, error in [
        ("err_130429_throughput.json", GraphError(130429, "x")),
        ("err_131056_pair_rate.json", GraphError(131056, "x")),
        ("err_100_invalid_parameter.json", GraphError(100, "x")),
        ("err_132001_template_missing.json", GraphError(132001, "x")),
        ("err_131047_window.json", GraphError(131047, "x")),
        ("err_131000_generic.json", GraphError(131000, "x")),
        ("err_190_token_expired.json", token_invalid()),
    ]:
        sample = response_sample(name)
        assert same_keys(error.response_body(), sample), name
        assert error.response_body()["error"]["message"].startswith("(#") or error.code == 190
        assert error.http_status == (401 if error.code == 190 else 400)
        assert error.response_body()["error"]["code"] == sample["error"]["code"]


async def test_mark_as_read_and_typing_answer_success(sandbox: SandboxClient) -> None:
    for body in (
        {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"},
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "wamid.X",
            "typing_indicator": {"type": "text"},
        },
    ):
        status, answer = await send(sandbox, body)
        assert (status, answer) == (200, response_sample("mark_read_ok.json"))


async def test_body_that_is_not_json_answers_100(sandbox: SandboxClient) -> None:
    response = await sandbox.post(
        f"{GRAPH}/{phone_number_id(sandbox)}/messages",
        data=b"{",
        headers={"Authorization": "Bearer sandbox-test-token"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == 100


async def test_audio_is_played_after_it_is_read(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    open_window(sandbox)
    await send(
        sandbox,
        {
            "messaging_product": "whatsapp",
            "to": CUSTOMER,
            "type": "audio",
            "audio": {"link": "https://example.com/a.ogg"},
        },
    )
    await wait_until(lambda: len(receiver[0].statuses()) == 4, timeout=5)
    assert [s for _, s, _ in receiver[0].statuses()] == ["sent", "delivered", "read", "played"]


async def test_changes_due_together_are_batched_in_one_body(
    receiver: tuple[Receiver, str],
) -> None:
    client = await start_sandbox(receiver[1], chaos=Chaos(batch_max=3))
    try:
        open_window(client)
        await send(client, text_to())
        await wait_until(lambda: len(receiver[0].statuses()) == 3, timeout=5)
        assert len(receiver[0].bodies) == 1  # sent, delivered and read, due at once
    finally:
        await client.close()


async def test_redelivery_resends_a_webhook_as_it_was(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    await send(sandbox, text_to("19998887777"))
    await wait_until(lambda: len(receiver[0].bodies) == 1, timeout=5)
    response = await sandbox.post("/_sandbox/webhooks/1/redeliver")
    assert response.status == 200
    await wait_until(lambda: len(receiver[0].bodies) == 2, timeout=5)
    assert receiver[0].bodies[0] == receiver[0].bodies[1]
    assert (await sandbox.post("/_sandbox/webhooks/999/redeliver")).status == 404


async def test_requests_are_logged_and_reset_forgets_them(sandbox: SandboxClient) -> None:
    await send(sandbox, text_to(), token="wrong")
    log = await (await sandbox.get("/_sandbox/requests")).json()
    assert [(r["method"], r["status"], r["code"]) for r in log] == [("POST", 401, 190)]
    assert (await sandbox.post("/_sandbox/reset")).status == 200
    assert await (await sandbox.get("/_sandbox/requests")).json() == []
    state = await (await sandbox.get("/_sandbox/state")).json()
    assert [c["wa_id"] for c in state["customers"]] == [CUSTOMER]


async def test_request_log_keeps_the_newest_requests_it_has_room_for(
    receiver: tuple[Receiver, str],
) -> None:
    client = await start_sandbox(receiver[1], request_log_size=2)
    try:
        open_window(client)
        await send(client, text_to(), token="wrong")
        for _ in range(2):
            await send(client, text_to())
        log = await (await client.get("/_sandbox/requests")).json()
        assert [r["status"] for r in log] == [200, 200]  # the 401, the oldest, made room
        assert (await client.post("/_sandbox/reset")).status == 200
        assert client.app[WORLD].requests.maxlen == 2  # a reset keeps the size
    finally:
        await client.close()


async def test_management_answers_carry_usage_headers(sandbox: SandboxClient) -> None:
    response = await sandbox.get(
        f"{GRAPH}/{phone_number_id(sandbox)}",
        headers={"Authorization": "Bearer sandbox-test-token"},
    )
    usage = json.loads(response.headers["X-Business-Use-Case-Usage"])
    [(waba, [entry])] = usage.items()
    assert entry["type"] == "whatsapp_business_management"
    assert set(entry) >= {
        "call_count",
        "total_cputime",
        "total_time",
        "estimated_time_to_regain_access",
    }
    assert "call_count" in json.loads(response.headers["X-App-Usage"])
    sent = await sandbox.post(
        f"{GRAPH}/{phone_number_id(sandbox)}/messages",
        json=text_to(),
        headers={"Authorization": "Bearer sandbox-test-token"},
    )
    assert "X-Business-Use-Case-Usage" not in sent.headers  # messaging is not management
    assert waba


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text"}, 131008),
        (
            {"messaging_product": "whatsapp", "to": "12", "type": "text", "text": {"body": "x"}},
            131009,
        ),
        (
            {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "hologram", "hologram": {}},
            131051,
        ),
        ({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": "x"}, 100),
    ],
)
async def test_bad_parameters_answer_their_code_in_meta_s_shape(
    sandbox: SandboxClient, body: dict[str, object], code: int
) -> None:
    status, answer = await send(sandbox, body)
    assert (status, answer["error"]["code"]) == (400, code)
    assert same_keys(answer, response_sample("err_100_invalid_parameter.json"))


async def test_reset_forgets_webhooks_still_due(
    receiver: tuple[Receiver, str],
) -> None:
    client = await start_sandbox(receiver[1], chaos=Chaos(delay_s=(0.3, 0.3)))
    try:
        open_window(client)
        await send(client, text_to())  # sent, delivered, read: due in 0.3 s and later
        assert (await client.post("/_sandbox/reset")).status == 200
        assert client.app[SENDER].idle()
        assert receiver[0].bodies == []
    finally:
        await client.close()


async def test_unknown_control_path_answers_404_not_a_graph_node(sandbox: SandboxClient) -> None:
    assert (await sandbox.get(f"/_sandbox/{phone_number_id(sandbox)}")).status == 404


async def test_phone_numbers_of_a_waba(sandbox: SandboxClient) -> None:
    business = next(iter(sandbox.app[WORLD].businesses.values()))
    response = await sandbox.get(
        f"{GRAPH}/{business.waba_id}/phone_numbers",
        headers={"Authorization": "Bearer sandbox-test-token"},
    )
    body = await response.json()
    assert [n["id"] for n in body["data"]] == [business.phone_number_id]
    assert body["data"][0]["display_phone_number"] == business.display_phone_number


async def test_answers_outside_graph_errors_are_logged_too(sandbox: SandboxClient) -> None:
    await sandbox.get(
        "/whatsapp_business/attachments/?hash=nope",
        headers={"Authorization": "Bearer sandbox-test-token"},
    )
    log = await (await sandbox.get("/_sandbox/requests")).json()
    assert [(r["path"], r["status"]) for r in log] == [("/whatsapp_business/attachments/", 404)]


def test_chaos_out_of_range_is_refused() -> None:
    for chaos in ({"batch_max": 0}, {"duplicate_rate": 1.5}, {"delay_s": (2.0, 1.0)}):
        with pytest.raises(ValueError, match="chaos"):
            Chaos(**chaos)


async def test_statuses_arrive_in_order_however_slow_the_receiver(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    receiver[0].latencies_s = [0.03, 0.0, 0.01] * 10  # sent slowest: a race would reorder
    customers = [f"1555222{i:04d}" for i in range(10)]
    for wa_id in customers:
        sandbox.app[WORLD].add_customer(wa_id, "C")
        open_window(sandbox, wa_id)
        await send(sandbox, text_to(wa_id))
    got = receiver[0]
    await wait_until(lambda: len(got.statuses(got.answered)) == 30, timeout=10)
    per_message: dict[str, list[str]] = {}
    for wamid, status, _ in got.statuses(got.answered):  # as the receiver finished them
        per_message.setdefault(wamid, []).append(status)
    assert all(order == ["sent", "delivered", "read"] for order in per_message.values())


@pytest.mark.parametrize(
    ("version", "status"),
    [("v26.0", 200), ("v22.0", 200), ("v15.0", 200), ("v99.0", 400)],
)
async def test_every_released_graph_version_is_served_and_an_unreleased_one_refused(
    sandbox: SandboxClient, version: str, status: int
) -> None:
    """Meta serves a version until its end of life, and past it answers as the oldest one still
    available; a version it never released is refused."""
    answer = await sandbox.get(
        f"/{version}/{phone_number_id(sandbox)}",
        headers={"Authorization": "Bearer sandbox-test-token"},
    )
    assert answer.status == status
