"""The sandbox as Meta: a flow created, published and filled by a simulated customer through
wapipe's own endpoint and flows worker, ending in the nfm_reply webhook; what Meta's health
monitoring would see; the management commands against the sandbox's Flows API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SECRETS, IngressClient
from tests.helpers import wait_until
from tests.integration.account_support import environment, wapipe
from tests.integration.flows_support import private_key
from tests.integration.sandbox_support import (
    CUSTOMER,
    Receiver,
    SandboxClient,
    open_window,
    send,
    start_sandbox,
    text_to,
)
from wapipe.sandbox.keys import WORLD
from wapipe.shared.flows import keys

BOOKING = Path("examples/booking_flow.json")
ANSWERS = {
    "APPOINTMENT": {"department": "colour", "slot": "mon-15"},
    "DETAILS": {"name": "Ana"},
}


@pytest.fixture
async def meta(receiver: tuple[Receiver, str]) -> AsyncIterator[SandboxClient]:
    """The sandbox, signing with the app secret the endpoint knows."""
    client = await start_sandbox(receiver[1], secret=SECRETS[0])
    yield client
    await client.close()


async def published_booking(
    meta: SandboxClient, endpoint: IngressClient, tmp_path: Path
) -> tuple[dict[str, str], str]:
    env = environment(meta, f"sqlite:///{tmp_path}/w.db")
    number = next(iter(meta.app[WORLD].businesses))
    (tmp_path / "public.pem").write_text(keys.public_pem(private_key(0)))
    ran = await wapipe(
        env,
        "flows",
        "keys",
        "upload",
        "--public-key",
        str(tmp_path / "public.pem"),
        "--from",
        number,
    )
    assert ran.code == 0, ran.err
    uri = str(endpoint.make_url("/flows"))
    created = await wapipe(
        env, "flows", "create", "booking", str(BOOKING), "--endpoint-uri", uri,
        "--category", "APPOINTMENT_BOOKING",
    )  # fmt: skip
    assert created.code == 0, created.err
    flow_id: str = created.json()["id"]
    assert created.json()["validation_errors"] == []
    assert (await wapipe(env, "flows", "publish", flow_id)).code == 0
    return env, flow_id


def flow_message(**parameters: Any) -> dict[str, Any]:
    """A flow message to the customer: the booking flow's, as the example sends it."""
    return {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "interactive",
        "interactive": {
            "type": "flow",
            "body": {"text": "Book your visit"},
            "action": {
                "name": "flow",
                "parameters": {"flow_message_version": "3", "flow_cta": "Book", **parameters},
            },
        },
    }


async def sent(meta: SandboxClient, body: dict[str, Any]) -> str:
    """Send ``body`` from the business, in the customer's service window: its wamid."""
    open_window(meta)
    status, answer = await send(meta, body)
    assert status == 200, answer
    wamid: str = answer["messages"][0]["id"]
    return wamid


async def open_flow(meta: SandboxClient, message_id: str, wa_id: str = CUSTOMER) -> Any:
    body = {"message_id": message_id, "answers": ANSWERS}
    return await meta.post(f"/_sandbox/customers/{wa_id}/flows", json=body)


async def fill(meta: SandboxClient, flow_id: str, token: str, **more: Any) -> dict[str, Any]:
    """The customer opens a data_exchange flow message for ``flow_id`` and fills it."""
    parameters = {"flow_id": flow_id, "flow_token": token, "flow_action": "data_exchange", **more}
    response = await open_flow(meta, await sent(meta, flow_message(**parameters)))
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


def nfm_replies(receiver: Receiver) -> list[dict[str, Any]]:
    found = []
    for body in receiver.bodies:
        for entry in json.loads(body)["entry"]:
            for change in entry["changes"]:
                for message in change["value"].get("messages", []):
                    if message.get("interactive", {}).get("type") == "nfm_reply":
                        found.append(message)
    return found


async def test_a_customer_fills_the_booking_flow_and_its_nfm_reply_comes_back(
    meta: SandboxClient,
    answered: IngressClient,
    receiver: tuple[Receiver, str],
    tmp_path: Path,
) -> None:
    env, flow_id = await published_booking(meta, answered, tmp_path)
    played = await fill(meta, flow_id, "booking:42")
    assert played["error"] is None
    assert [step["action"] for step in played["steps"]] == ["INIT", *["data_exchange"] * 3]
    assert [step["answered_screen"] for step in played["steps"]] == [
        "APPOINTMENT",
        "DETAILS",
        "SUMMARY",
        "SUCCESS",
    ]
    params = {"department": "colour", "slot": "mon-15", "name": "Ana", "flow_token": "booking:42"}
    assert played["closed_with"] == params
    await wait_until(lambda: bool(nfm_replies(receiver[0])), timeout=5)
    reply = nfm_replies(receiver[0])[0]
    assert reply["id"] == played["nfm_reply_wamid"]
    assert reply["context"]["id"] == played["message_id"]
    assert json.loads(reply["interactive"]["nfm_reply"]["response_json"]) == params

    health = await (await meta.get(f"/_sandbox/flows/{flow_id}/health")).json()
    assert health["requests"] == 4
    assert health["error_rate"] == 0
    assert health["p50_ms"] <= health["p90_ms"] <= health["p99_ms"]
    ping = await (await meta.post(f"/_sandbox/flows/{flow_id}/ping")).json()
    assert ping == {"status": 200, "answer": {"data": {"status": "active"}}}

    shown = await wapipe(env, "flows", "show", flow_id)
    assert shown.json()["status"] == "PUBLISHED"
    assert shown.json()["data_api_version"] == "3.0"


async def test_an_endpoint_that_refuses_the_token_ends_the_flow_with_an_error(
    meta: SandboxClient, answered: IngressClient, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    _, flow_id = await published_booking(meta, answered, tmp_path)
    played = await fill(meta, flow_id, "booking:42:used")
    assert played["error"] == "the endpoint answered 427"
    assert played["closed_with"] is None
    health = await (await meta.get(f"/_sandbox/flows/{flow_id}/health")).json()
    assert health["error_rate"] == 1.0
    assert not nfm_replies(receiver[0])


async def test_a_published_flow_cannot_change_and_a_deprecated_one_cannot_open(
    meta: SandboxClient, endpoint: IngressClient, tmp_path: Path
) -> None:
    env, flow_id = await published_booking(meta, endpoint, tmp_path)
    updated = await wapipe(env, "flows", "update", flow_id, "--name", "renamed")
    assert updated.code == 1
    assert "only a draft can change" in updated.err
    assert (await wapipe(env, "flows", "deprecate", flow_id)).code == 0
    response = await open_flow(meta, await sent(meta, flow_message(flow_id=flow_id)))
    assert response.status == 409
    assert "cannot be opened in published mode (DEPRECATED)" in await response.text()
    listed = await wapipe(env, "flows", "list")
    assert [f["status"] for f in listed.json()["data"]] == ["DEPRECATED"]


async def test_a_draft_is_updated_and_deleted(meta: SandboxClient, tmp_path: Path) -> None:
    env = environment(meta, f"sqlite:///{tmp_path}/w.db")
    created = await wapipe(env, "flows", "create", "draft", str(BOOKING))
    flow_id = created.json()["id"]
    updated = await wapipe(env, "flows", "update", flow_id, "--file", str(BOOKING), "--name", "d2")
    assert updated.code == 0, updated.err
    assert (await wapipe(env, "flows", "show", flow_id)).json()["name"] == "d2"
    assert (await wapipe(env, "flows", "delete", flow_id)).code == 0
    assert (await wapipe(env, "flows", "list")).json()["data"] == []


@pytest.mark.parametrize(
    ("flow_json", "says"),
    [
        ({"screens": []}, "version: required"),
        (
            {"version": "7.2", "screens": [{"id": "A", "layout": {}}]},
            "at least one must be terminal",
        ),
        (
            {
                "version": "7.2",
                "data_api_version": "3.0",
                "screens": [{"id": "A", "layout": {}, "terminal": True}],
            },
            "routing_model: required",
        ),
        (
            {
                "version": "7.2",
                "data_api_version": "2.0",
                "routing_model": {"A": ["B"]},
                "screens": [{"id": "A", "layout": {}, "terminal": True}],
            },
            "routes to unknown B",
        ),
    ],
)
async def test_a_flow_json_with_problems_is_refused_before_any_call(
    meta: SandboxClient, tmp_path: Path, flow_json: dict[str, Any], says: str
) -> None:
    env = environment(meta, f"sqlite:///{tmp_path}/w.db")
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow_json))
    ran = await wapipe(env, "flows", "create", "bad", str(path))
    assert ran.code == 2
    assert says in ran.err
    assert not [r for r in meta.app[WORLD].requests if r.path.endswith("/flows")]


async def test_faults_slow_and_break_the_endpoint_and_the_health_report_shows_it(
    meta: SandboxClient, answered: IngressClient, tmp_path: Path
) -> None:
    _, flow_id = await published_booking(meta, answered, tmp_path)
    slow = {"endpoint": "flows_endpoint", "latency_s": 0.3, "count": 4}
    assert (await meta.post("/_sandbox/faults", json=slow)).status == 200
    played = await fill(meta, flow_id, "booking:slow")
    assert played["closed_with"] is not None
    health = await (await meta.get(f"/_sandbox/flows/{flow_id}/health")).json()
    assert health["p50_ms"] >= 300

    broken = {"endpoint": "flows_endpoint", "status": 503, "count": 1}
    assert (await meta.post("/_sandbox/faults", json=broken)).status == 200
    played = await fill(meta, flow_id, "booking:broken")
    assert played["error"] == "the endpoint answered 503"
    health = await (await meta.get(f"/_sandbox/flows/{flow_id}/health")).json()
    assert (health["requests"], health["errors"]) == (5, 1)


async def test_the_customer_sees_each_screen_with_its_fields_and_what_was_answered(
    meta: SandboxClient, answered: IngressClient, tmp_path: Path
) -> None:
    _, flow_id = await published_booking(meta, answered, tmp_path)
    played = await fill(meta, flow_id, "booking:screens")
    screens = played["screens"]
    assert [(s["screen"], s["title"]) for s in screens] == [
        ("APPOINTMENT", "Book an appointment"),
        ("DETAILS", "Your details"),
        ("SUMMARY", "Confirm"),
    ]
    assert [f["name"] for f in screens[0]["fields"]] == ["department", "slot"]
    assert screens[0]["fields"][0] == {
        "name": "department", "type": "Dropdown", "label": "Service", "required": True,
    }  # fmt: skip
    assert screens[0]["answers"] == ANSWERS["APPOINTMENT"]
    assert screens[1]["data"] == {"department": "colour", "slot": "mon-15"}  # the endpoint's
    assert played["steps"][0]["answer"]["screen"] == "APPOINTMENT"
    assert played["health"]["requests"] == 4


async def test_a_navigate_message_by_name_opens_on_its_screen_without_asking_the_endpoint(
    meta: SandboxClient, answered: IngressClient, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    await published_booking(meta, answered, tmp_path)
    opening = {"screen": "DETAILS", "data": {"department": "beard", "slot": "mon-10"}}
    message = flow_message(
        flow_name="booking", flow_token="booking:nav", flow_action_payload=opening
    )
    response = await open_flow(meta, await sent(meta, message))
    assert response.status == 200, await response.text()
    played = await response.json()
    assert played["flow_action"] == "navigate"
    assert played["screens"][0]["screen"] == "DETAILS"
    assert played["screens"][0]["data"] == opening["data"]
    assert [step["action"] for step in played["steps"]] == ["data_exchange"] * 2  # no INIT
    assert played["closed_with"] == {
        "department": "beard", "slot": "mon-10", "name": "Ana", "flow_token": "booking:nav",
    }  # fmt: skip
    await wait_until(lambda: bool(nfm_replies(receiver[0])), timeout=5)


async def test_a_draft_opens_only_from_a_message_sent_in_draft_mode(
    meta: SandboxClient, answered: IngressClient, tmp_path: Path
) -> None:
    env, _ = await published_booking(meta, answered, tmp_path)
    created = await wapipe(
        env, "flows", "create", "booking-draft", str(BOOKING), "--endpoint-uri",
        str(answered.make_url("/flows")),
    )  # fmt: skip
    draft = created.json()["id"]
    published_mode = flow_message(flow_id=draft, flow_action="data_exchange")
    response = await open_flow(meta, await sent(meta, published_mode))
    assert response.status == 409
    assert "cannot be opened in published mode (DRAFT)" in await response.text()
    draft_mode = flow_message(
        flow_id=draft, flow_action="data_exchange", flow_token="booking:draft", mode="draft"
    )
    response = await open_flow(meta, await sent(meta, draft_mode))
    assert response.status == 200, await response.text()
    assert (await response.json())["closed_with"]["flow_token"] == "booking:draft"


async def test_a_customer_opens_only_a_flow_message_it_received(meta: SandboxClient) -> None:
    other = "16315550000"
    assert (await meta.post("/_sandbox/customers", json={"wa_id": other})).status == 200
    open_window(meta, other)
    text = await sent(meta, text_to())
    to_other = await sent(meta, {**flow_message(flow_id="1"), "to": other})
    cases = [
        (await open_flow(meta, "wamid.UNKNOWN"), 404, "no message wamid.UNKNOWN was sent"),
        (await open_flow(meta, text), 400, "is a text message, not a flow"),
        (await open_flow(meta, to_other), 403, "was sent to another customer"),
        (await open_flow(meta, to_other, wa_id=other), 409, "the flow 1 does not exist"),
        (await meta.post(f"/_sandbox/customers/{CUSTOMER}/flows", json={}), 400, "message_id"),
    ]
    for response, status, says in cases:
        assert (response.status, says in await response.text()) == (status, True)


async def test_a_flow_message_the_customer_never_got_cannot_be_opened(
    meta: SandboxClient,
) -> None:
    world = meta.app[WORLD]
    world.customers[CUSTOMER].last_inbound_at = None  # the service window is closed
    status, answer = await send(meta, flow_message(flow_id="1"))
    assert status == 200, answer  # accepted, then failed 131047
    response = await open_flow(meta, answer["messages"][0]["id"])
    assert response.status == 409
    assert "never reached the customer (131047)" in await response.text()


async def test_the_command_line_customer_opens_a_flow_message(
    meta: SandboxClient, answered: IngressClient, tmp_path: Path
) -> None:
    env, flow_id = await published_booking(meta, answered, tmp_path)
    message = flow_message(flow_id=flow_id, flow_token="booking:cli", flow_action="data_exchange")
    wamid = await sent(meta, message)
    url = str(meta.make_url("")).rstrip("/")
    (tmp_path / "answers.json").write_text(json.dumps(ANSWERS))
    given = ("--answers", f"@{tmp_path / 'answers.json'}", "--sandbox-url", url)
    ran = await wapipe(env, "sandbox", "customer", "open-flow", CUSTOMER, wamid, *given)
    assert ran.code == 0, ran.err
    assert ran.out.startswith("flow booking: APPOINTMENT -> DETAILS -> SUMMARY: closed with {")
    assert '"flow_token": "booking:cli"' in ran.out
    ran = await wapipe(env, "sandbox", "customer", "open-flow", CUSTOMER, "wamid.NONE", *given)
    assert ran.code == 1
    assert "the sandbox refused (404): no message wamid.NONE was sent" in ran.err


def footer(action: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Footer", "label": "Next", "on-click-action": action}


STATIC_FLOW = {  # no endpoint: navigate, then complete
    "version": "7.2",
    "screens": [
        {
            "id": "ASK",
            "title": "Your name",
            "layout": {"type": "SingleColumnLayout", "children": [
                {"type": "TextInput", "name": "name", "label": "Name"},
                footer({"name": "navigate", "next": {"type": "screen", "name": "THANKS"},
                        "payload": {"name": "${form.name}"}}),
            ]},
        },
        {
            "id": "THANKS",
            "title": "Thanks",
            "terminal": True,
            "data": {"name": {"type": "string", "__example__": "Ana"}},
            "layout": {"type": "SingleColumnLayout", "children": [
                footer({"name": "complete", "payload": {"name": "${data.name}"}}),
            ]},
        },
    ],
}  # fmt: skip


async def test_a_flow_without_an_endpoint_opens_on_its_first_entry_screen_without_a_key(
    meta: SandboxClient, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    env = environment(meta, f"sqlite:///{tmp_path}/w.db")
    (tmp_path / "static.json").write_text(json.dumps(STATIC_FLOW))
    created = await wapipe(env, "flows", "create", "static", str(tmp_path / "static.json"))
    assert created.code == 0, created.err
    assert (await wapipe(env, "flows", "publish", created.json()["id"])).code == 0
    message = flow_message(flow_name="static")  # navigate by default, no screen: the first
    body = {"message_id": await sent(meta, message), "answers": {"ASK": {"name": "Io"}}}
    response = await meta.post(f"/_sandbox/customers/{CUSTOMER}/flows", json=body)
    assert response.status == 200, await response.text()
    played = await response.json()
    assert [s["screen"] for s in played["screens"]] == ["ASK", "THANKS"]
    assert played["steps"] == []  # the endpoint was never called
    assert played["closed_with"] == {"name": "Io", "flow_token": "unused"}
    await wait_until(lambda: bool(nfm_replies(receiver[0])), timeout=5)
