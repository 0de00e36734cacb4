"""The committed contracts (schemas/, docs/asyncapi.json) are what the code generates, and the
AsyncAPI document names every exchange, queue and binding of shared/topology.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from wapipe.shared import topology
from wapipe.shared.schemas.export import ASYNCAPI_FILE, ROOT, generated

REGENERATE = "run `python -m shared.schemas.export` (or `make schemas`) and commit the result"


@pytest.mark.parametrize("name", sorted(generated()))
def test_the_committed_file_is_what_the_code_generates(name: str) -> None:
    path = ROOT / name
    assert path.is_file(), f"{name} is missing: {REGENERATE}"
    assert path.read_text(encoding="utf-8") == generated()[name], f"{name} is stale: {REGENERATE}"


def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / ASYNCAPI_FILE).read_text(encoding="utf-8"))
    return document


def test_the_document_names_every_exchange_queue_and_binding_of_the_topology() -> None:
    channels = asyncapi()["channels"].values()
    exchanges = {c["bindings"]["amqp"]["exchange"]["name"] for c in channels} | {
        name for c in channels for name in c["x-exchanges"]
    }
    queues = {q["name"] for c in channels for q in c["x-queues"]}
    routes = {
        (c["bindings"]["amqp"]["exchange"]["name"], c["x-binding-key"], target)
        for c in channels
        for target in [q["name"] for q in c["x-queues"]] + c["x-exchanges"]
    }
    bound_exchanges = getattr(topology, "EXCHANGE_BINDINGS", None) or [
        (topology.EVENTS_EXCHANGE, topology.SINK_EXCHANGE, key) for key in topology.OUTPUT_KEYS
    ]
    expected_routes = {
        *((q.exchange, key, q.name) for q in topology.QUEUES for key in q.binding_keys),
        *((source, key, destination) for source, destination, key in bound_exchanges),
        *((topology.DEAD_LETTER_EXCHANGE, q.name, q.dead_letter_queue) for q in topology.QUEUES),
        *((wait.name, "", wait.name) for wait in topology.WAIT_QUEUES),
    }
    # Every exchange takes something, so each has a channel (wa.sink's is its binding from
    # wa.events, where it is the destination).
    missing_exchanges = (
        {e.name for e in topology.EXCHANGES}
        - exchanges
        - {destination for _, _, destination in bound_exchanges}
    )
    missing_queues = {
        *(name for q in topology.QUEUES for name in (q.name, q.dead_letter_queue)),
        *(wait.name for wait in topology.WAIT_QUEUES),
    } - queues
    assert not missing_exchanges, f"exchanges missing from {ASYNCAPI_FILE}: {missing_exchanges}"
    assert not missing_queues, f"queues missing from {ASYNCAPI_FILE}: {missing_queues}"
    missing = expected_routes - routes
    assert not missing, f"bindings (exchange, key, target) missing from {ASYNCAPI_FILE}: {missing}"


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"]
        for item in value.values():
            yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def test_every_reference_in_the_document_resolves() -> None:
    document = asyncapi()
    for ref in set(refs(document)):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict), f"{ref} does not resolve"
            assert part in node, f"{ref} does not resolve"
            node = node[part]


def test_send_jobs_are_published_by_others_and_events_by_wapipe() -> None:
    channels = asyncapi()["channels"]
    send = channels[f"{topology.OUTBOUND_EXCHANGE}/send.#"]
    assert send["publish"]["message"] == {"$ref": "#/components/messages/Job"}
    assert send["publish"]["bindings"]["amqp"]["mandatory"] is True
    status = channels[f"{topology.EVENTS_EXCHANGE}/status.#"]
    assert status["subscribe"]["message"] == {"$ref": "#/components/messages/WebhookEvent"}
