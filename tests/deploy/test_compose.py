"""deploy/compose.yaml end to end: a customer writes through the sandbox (the Cloud API), a
reply job goes out, and the rows and statuses land in PostgreSQL; a worker killed mid-stream
loses nothing; a customer fills a flow through the ingress's /flows and the flows worker."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.request
from typing import Any

import pytest

from tests.deploy.stack import COMPOSE_FILE, DEPLOY, ROOT, Stack, run, wait_until
from wapipe.shared.settings import Settings

GRAPH_VERSION = Settings().graph_version

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(1500)]

CUSTOMER = "16315551181"


def phone_number_id(stack: Stack) -> str:
    state = stack.get_json("sandbox", 8090, "/_sandbox/state")
    return str(state["businesses"][0]["phone_number_id"])


def send_replies(stack: Stack, bodies: list[str], service: str = "sender-b") -> None:
    number = phone_number_id(stack)
    script = " && ".join(
        f"wapipe send text --from {number} --to {CUSTOMER} --body '{body}'" for body in bodies
    )
    stack("exec", "-T", service, "sh", "-c", script, timeout_s=120)


def statuses_of(stack: Stack, body: str) -> set[str]:
    rows = stack.sql(
        "select s.status from statuses s join send_jobs j on j.wamid = s.wamid "
        f"where j.job like '%\"{body}\"%'"
    )
    return {row[0] for row in rows}


def accepted_sends(stack: Stack) -> int:
    """Sends the sandbox (the Cloud API) accepted: each job must be sent exactly once."""
    requests = stack.get_json("sandbox", 8090, "/_sandbox/requests")
    return sum(1 for r in requests if r["path"].endswith("/messages") and r["status"] == 200)


def test_customer_message_and_reply_are_stored_with_their_statuses(stack: Stack) -> None:
    stack(
        "exec", "-T", "sandbox", "wapipe", "sandbox", "customer", "send", CUSTOMER,
        "--text", "hello from compose",
    )  # fmt: skip
    wait_until(
        lambda: (
            stack.sql(
                "select count(*) from messages where direction = 'in' "
                "and payload like '%hello from compose%'"
            )
            == [["1"]]
        ),
        60,
        "the customer's message in PostgreSQL",
    )

    send_replies(stack, ["reply from compose"])
    wait_until(
        lambda: statuses_of(stack, "reply from compose") == {"sent", "delivered", "read"},
        90,
        "the reply's sent, delivered and read statuses",
    )
    jobs = stack.sql("select state from send_jobs where job like '%reply from compose%'")
    assert jobs == [["accepted"]]
    # The Cloud API took one send per job: the two senders did not both send it.
    assert accepted_sends(stack) == int(stack.sql("select count(*) from send_jobs")[0][0])


def test_killed_workers_lose_nothing(stack: Stack) -> None:
    bodies = [f"batch reply {n}" for n in range(10)]
    # The status worker dies with the statuses of the sends still to come, and sender-a (the
    # active owner of some shards) dies too: sender-b takes its shards over.
    stack("kill", "-s", "SIGKILL", "status", "sender-a")
    send_replies(stack, bodies)

    def accepted_jobs() -> int:
        rows = stack.sql(
            "select count(*) from send_jobs where job like '%batch reply%' and wamid is not null"
        )
        return int(rows[0][0])

    wait_until(lambda: accepted_jobs() == len(bodies), 120, "every reply accepted")
    assert all(statuses_of(stack, body) == set() for body in bodies)  # nobody stored them yet
    stack("start", "status", "sender-a")
    wait_until(
        lambda: all(statuses_of(stack, body) == {"sent", "delivered", "read"} for body in bodies),
        120,
        "every reply's three statuses after the status worker came back",
    )
    rows = stack.sql(
        "select count(*) from statuses s join send_jobs j on j.wamid = s.wamid "
        "where j.job like '%batch reply%'"
    )
    assert rows == [[str(3 * len(bodies))]]
    assert accepted_sends(stack) == int(stack.sql("select count(*) from send_jobs")[0][0])
    dead = stack(
        "exec", "-T", "rabbitmq", "rabbitmqctl", "-q", "list_queues", "name", "messages",
    )  # fmt: skip
    dead_letters = {
        name: int(count)
        for name, count in (line.split() for line in dead.splitlines() if ".dlq" in line)
    }
    assert dead_letters, dead
    assert not any(dead_letters.values()), dead_letters


def graph(stack: Stack, path: str, body: dict[str, Any]) -> Any:
    """A Graph API call to the sandbox, with the stack's access token."""
    token = (DEPLOY / "secrets" / "access_token").read_text().strip()
    request = urllib.request.Request(
        f"{stack.url('sandbox', 8090)}/{GRAPH_VERSION}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def test_a_customer_fills_a_flow_through_the_ingress_and_the_flows_worker(stack: Stack) -> None:
    """The booking flow on the stack: the public half of the ingress's key set on the number,
    the flow created and published, a flow message sent by a sender, the customer's client
    calling http://ingress:8080/flows (answered by the flows service), the nfm_reply stored."""
    number = phone_number_id(stack)
    waba = stack.get_json("sandbox", 8090, "/_sandbox/state")["businesses"][0]["waba_id"]
    public = run(["openssl", "pkey", "-in", str(DEPLOY / "secrets" / "flows_private_key"),
                  "-pubout"])  # fmt: skip
    # The business's calls to the Graph API (the image has no `wapipe flows`: the cli extra).
    graph(stack, f"/{number}/whatsapp_business_encryption", {"business_public_key": public})
    flow_id = graph(stack, f"/{waba}/flows", {
        "name": "booking", "categories": ["APPOINTMENT_BOOKING"], "publish": True,
        "flow_json": (ROOT / "examples" / "booking_flow.json").read_text(),
        "endpoint_uri": "http://ingress:8080/flows",
    })["id"]  # fmt: skip
    stack("exec", "-T", "sandbox", "wapipe", "sandbox", "customer", "send", CUSTOMER,
          "--text", "a booking please")  # fmt: skip
    parameters = {
        "flow_message_version": "3", "flow_id": flow_id, "flow_cta": "Book",
        "flow_token": "booking:compose", "flow_action": "data_exchange",
    }  # fmt: skip
    job = {
        "kind": "send", "idempotency_key": "flow-compose", "phone_number_id": number,
        "to": CUSTOMER, "message": {"type": "interactive", "interactive": {
            "type": "flow", "body": {"text": "Book"},
            "action": {"name": "flow", "parameters": parameters}}},
    }  # fmt: skip
    sent = stack("exec", "-T", "-e", f"JOB={json.dumps(job)}", "sender-b", "sh", "-c",
                 'printf "%s" "$JOB" | wapipe send job - --wait')  # fmt: skip
    wamid = re.search(r"accepted: (wamid\.\S+)", sent)
    assert wamid is not None, sent
    answers = {"APPOINTMENT": {"department": "haircut", "slot": "mon-10"},
               "DETAILS": {"name": "Ana"}}  # fmt: skip
    played = stack.post_json(
        "sandbox", 8090, f"/_sandbox/customers/{CUSTOMER}/flows",
        {"message_id": wamid.group(1), "answers": answers},
    )  # fmt: skip
    assert played["error"] is None, played
    assert [step["status"] for step in played["steps"]] == [200, 200, 200, 200]
    wait_until(
        lambda: (
            stack.sql(
                "select count(*) from messages where direction = 'in' "
                "and payload like '%nfm_reply%' and payload like '%booking:compose%'"
            )
            == [["1"]]
        ),
        60,
        "the nfm_reply in PostgreSQL",
    )


def test_a_failing_exec_fails_with_its_status(stack: Stack) -> None:
    """`docker compose exec` (and `docker-compose exec`, the same binary) exit with the
    command's own status: a documented command that fails is seen failing."""
    assert stack.status("exec", "-T", "postgres", "sh", "-c", "exit 3").returncode == 3
    assert stack.status("exec", "-T", "no-such-service", "true").returncode != 0
    standalone = ["docker-compose", "-f", str(COMPOSE_FILE), "-p", stack.project]
    done = subprocess.run(
        [*standalone, "exec", "-T", "postgres", "false"],
        capture_output=True,
        env=stack.env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1


def test_a_failing_up_fails_make_and_names_the_variable_that_moves_the_port(
    stack: Stack,
) -> None:
    """`make compose-up` with a host port taken (say by a local `make up`) exits non-zero and
    says, in one line, which variable moves it."""
    project = f"{stack.project}-clash"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **stack.env,
            "COMPOSE_PROJECT_NAME": project,
            "WAPIPE_SANDBOX_PUBLISH": f"127.0.0.1:{port}",
        }
        try:
            done = subprocess.run(
                ["make", "compose-up"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        finally:
            Stack(project)("down", "--volumes", "--timeout", "3", timeout_s=180, check=False)
    assert done.returncode != 0
    said = [line for line in done.stderr.splitlines() if line.startswith("compose: ")]
    assert said == [
        f"compose: port {port} (WAPIPE_SANDBOX_PUBLISH=127.0.0.1:{port}) is taken on this host: "
        "set WAPIPE_SANDBOX_PUBLISH=127.0.0.1:<free port> (127.0.0.1: picks one)"
    ], done.stderr[-2000:]
