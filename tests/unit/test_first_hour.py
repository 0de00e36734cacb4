"""The pure parts of a first hour: the broker URL's check, the one-line errors, how messages,
jobs and the demo's transcript read, and what `wapipe up` plans and prints."""

from __future__ import annotations

import errno
import json

import aiormq
import msgspec
import pytest

from wapipe.cli.errors import UNREACHABLE, explain
from wapipe.cli.history import conversation_line
from wapipe.cli.history import summary as said
from wapipe.cli.local.demo import Step, transcript
from wapipe.cli.local.up import EXAMPLE_HANDLER, LOCAL_DEFAULTS, Sandbox, local_env, plan, summary
from wapipe.shared.settings import Settings, SettingsError, broker_urls, from_env
from wapipe.shared.storage.messages import ConversationLine

SANDBOX = Sandbox("118765000000000002", "15550101234", "16315551181")
PORTS = {
    "status": 9101,
    "message": 9102,
    "account": 9103,
    "media": 9104,
    "sender": 9105,
    "flows": 9106,
}


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@127.0.0.1:5672/",
        "amqps://user:p%40ss@broker.example:5671/prod",
        "amqp://guest:guest@localhost/vhost",
        "amqp://guest:gu@rd@localhost:5672/",
    ],
)
def test_well_formed_broker_urls_pass(url: str) -> None:
    assert from_env({"WAPIPE_AMQP_URL": url}).amqp_url == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("localhost:5672", "must start with amqp:// or amqps://"),
        ("http://localhost:5672/", "must start with amqp:// or amqps://"),
        ("amqp://h:99999/", "its port must be a number from 1 to 65535"),
        ("amqp://guest:secret@h:x/", "its port must be a number from 1 to 65535"),
        ("amqp:///", "names no host"),
    ],
)
def test_a_malformed_broker_url_names_the_variable_and_hides_the_password(
    url: str, says: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        from_env({"WAPIPE_AMQP_URL": url})
    assert str(raised.value).startswith(f"WAPIPE_AMQP_URL: {says} (e.g. ")
    assert "secret" not in str(raised.value)


def test_the_phone_number_id_is_a_setting() -> None:
    assert from_env({"WAPIPE_PHONE_NUMBER_ID": "118765"}).phone_number_id == "118765"
    assert from_env({}).phone_number_id == ""


def test_errors_become_one_line_each() -> None:
    in_use = OSError(errno.EADDRINUSE, "error while attempting to bind on ('127.0.0.1', 8080)")
    assert explain(in_use, "ingress") == (
        "the ingress cannot listen: error while attempting to bind on ('127.0.0.1', 8080) "
        "(set WAPIPE_INGRESS_PORT or --port to move it)",
        UNREACHABLE,
    )
    plugin = aiormq.exceptions.ConnectionCommandInvalid(
        "COMMAND_INVALID - unknown exchange type 'x-consistent-hash'"
    )
    assert explain(plugin, "topology") == (
        "the broker at WAPIPE_AMQP_URL lacks the plugin rabbitmq_consistent_hash_exchange "
        "(exchange type 'x-consistent-hash'): enable it with "
        "`rabbitmq-plugins enable rabbitmq_consistent_hash_exchange`",
        UNREACHABLE,
    )
    login = aiormq.exceptions.ProbableAuthenticationError("ACCESS_REFUSED - Login was refused")
    message, code = explain(login, "topology") or ("", 0)
    assert (message.split(":")[0], code) == (
        "the broker at WAPIPE_AMQP_URL refused the user, password or vhost",
        UNREACHABLE,
    )
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")
    assert (explain(refused, "send") or ("", 0))[0].startswith(
        "cannot reach the broker at WAPIPE_AMQP_URL: "
    )
    denied = PermissionError(errno.EACCES, "Permission denied", "var")
    assert explain(denied, "up") == ("var: Permission denied", UNREACHABLE)
    assert explain(ValueError("a bug"), "send") is None  # shown whole: it is ours to fix


def test_messages_read_in_a_few_words() -> None:
    button = {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Is Friday good?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]},
        },
    }
    tapped = {"type": "interactive", "interactive": {"button_reply": {"id": "y", "title": "Yes"}}}
    assert said("text", json.dumps({"type": "text", "text": {"body": "hi"}})) == "hi"
    assert said("interactive", json.dumps(button)) == "Is Friday good? [Yes]"
    assert said("interactive", json.dumps(tapped)) == "[Yes]"
    assert said("image", json.dumps({"type": "image", "image": {"caption": "shop"}})) == (
        "[image] shop"
    )
    assert said(None, None) == "[?]"  # a status for a message wapipe did not record
    line = ConversationLine(
        wamid="w",
        direction="out",
        type="text",
        payload=json.dumps({"type": "text", "text": {"body": "hi"}}),
        status="failed",
        failure_code=131047,
        failure_title="Re-engagement message",
        at=None,
    )
    assert conversation_line(line) == (
        "--:--:-- -> text        hi  (failed: 131047 Re-engagement message)"
    )
    job = json.dumps({"kind": "send", "message": {"type": "text", "text": {"body": "from job"}}})
    unrecorded = msgspec.structs.replace(line, type=None, payload=None, job=job)
    assert conversation_line(unrecorded).startswith("--:--:-- -> text        from job  (failed")


def test_the_demos_transcript() -> None:
    steps = [
        Step(
            said={"type": "image", "image": {"id": "1", "caption": "shop"}},
            reply={"type": "text", "text": {"body": "Got your image: 48,213 bytes."}},
            reply_wamid="wamid.B",
            statuses=("sent", "delivered", "read"),
            stored_at="/srv/var/media/ab/cd/abcd",
        )
    ]
    assert transcript(steps).splitlines() == [
        "<- customer image       [image] shop",
        "                         stored by the media worker at /srv/var/media/ab/cd/abcd",
        "-> business text        Got your image: 48,213 bytes.",
        "                         sent > delivered > read  wamid.B",
    ]


def test_wapipe_up_plans_the_sandbox_its_number_and_the_example_bot_when_nothing_is_set() -> None:
    env, defaulted = local_env({"WAPIPE_ACCESS_TOKEN": "mine"}, SANDBOX, "/here")
    assert env["WAPIPE_PHONE_NUMBER_ID"] == "118765000000000002"
    assert env["WAPIPE_MESSAGE_HANDLERS"] == EXAMPLE_HANDLER
    assert env["WAPIPE_SENDER_FILES_DIR"] == "/here"
    assert env["WAPIPE_FLOW_HANDLERS"] == "wapipe.examples.booking_flow:handle"
    assert env["WAPIPE_FLOWS_PRIVATE_KEY_FILE"] == "var/flows/private.pem"
    assert env["WAPIPE_ACCESS_TOKEN"] == "mine"
    assert "WAPIPE_ACCESS_TOKEN" not in defaulted
    services = plan(Settings(), env, PORTS)
    assert [service.name for service in services] == [
        "ingress",
        "worker status",
        "worker message",
        "worker account",
        "worker media",
        "worker sender",
        "worker flows",
        "sandbox",
    ]
    shown = summary(services, SANDBOX, env)
    assert "  ingress         http://127.0.0.1:8080" in shown
    assert "  worker sender   http://127.0.0.1:9105" in shown
    assert "phone number id 118765000000000002 (WAPIPE_PHONE_NUMBER_ID)" in shown
    assert "console         http://127.0.0.1:8090/_sandbox/console/" in shown
    assert "wapipe send text --to 16315551181" in shown


def test_wapipe_up_against_meta_runs_no_sandbox_and_no_example_bot() -> None:
    environ = {"WAPIPE_GRAPH_URL": "https://graph.facebook.com", "WAPIPE_MESSAGE_HANDLERS": ""}
    env, defaulted = local_env(environ, SANDBOX, "/here")
    assert env["WAPIPE_MESSAGE_HANDLERS"] == ""
    assert "WAPIPE_PHONE_NUMBER_ID" not in env
    assert set(defaulted) == set(LOCAL_DEFAULTS) - {"WAPIPE_GRAPH_URL"}
    assert "sandbox" not in [service.name for service in plan(Settings(), env, PORTS)]


def test_an_accepted_jobs_outbound_row_keeps_its_type_and_body() -> None:
    from wapipe.examples.echo_bot import menu
    from wapipe.shared.schemas.jobs import SendJob
    from wapipe.shared.storage.messages import outbound_row

    job = SendJob(idempotency_key="k", phone_number_id="1187", to="+1 631 555 1181", message=menu())
    row = outbound_row(job, "wamid.M", "16315551181", 1700000000.5)
    assert (row.wamid, row.direction, row.wa_id, row.type, row.status_rank) == (
        "wamid.M",
        "out",
        "16315551181",
        "interactive",
        0,
    )
    assert said(row.type, row.payload) == (
        "How can we help? [Opening hours] [Track my order] [Talk to us]"
    )
    assert outbound_row(job, "wamid.M", None, 0).wa_id == "+1 631 555 1181"


def test_several_broker_urls_are_the_nodes_of_one_cluster_in_their_order() -> None:
    nodes = "amqp://u:p@rabbit-1:5672/v, amqp://u:p@rabbit-2:5672/v,amqp://u:p@rabbit-3/v"
    settings = from_env({"WAPIPE_AMQP_URL": nodes})
    assert broker_urls(settings.amqp_url) == [
        "amqp://u:p@rabbit-1:5672/v",
        "amqp://u:p@rabbit-2:5672/v",
        "amqp://u:p@rabbit-3/v",
    ]


@pytest.mark.parametrize(
    ("urls", "says"),
    [
        ("amqp://u:secret@a/,rabbit-2:5672", "address 2 of 2: must start with amqp://"),
        ("amqp://u:secret@a/,,amqp://u:secret@c/", "address 2 of 3: is empty"),
        ("amqp://u:secret@a:0/,amqp://u:secret@b/", "address 1 of 2: its port must be"),
    ],
)
def test_a_bad_node_among_several_is_named_by_its_place_in_one_line(urls: str, says: str) -> None:
    with pytest.raises(SettingsError) as raised:
        from_env({"WAPIPE_AMQP_URL": urls})
    message = str(raised.value)
    assert message.startswith(f"WAPIPE_AMQP_URL: {says}")
    assert "\n" not in message
    assert "secret" not in message
