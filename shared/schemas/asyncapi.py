"""The AsyncAPI 2.6.0 document of wapipe's broker contract, built from ``shared/topology.py`` and
the msgspec Structs, so it cannot drift from the code (``python -m shared.schemas.export``).

One channel per exchange and binding key, named ``<exchange>/<binding key>``, with its AMQP
binding (exchange name and type) and, as ``x-queues`` and ``x-exchanges``, what is bound there
with that key. In AsyncAPI 2's words, seen from wapipe: ``publish`` is what other systems publish
and wapipe consumes (send jobs), ``subscribe`` what wapipe publishes for others to consume.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from wapipe.shared import topology
from wapipe.shared.schemas.events import Header
from wapipe.shared.schemas.payloads import CONTRACTS, PAYLOADS, component_schemas

ASYNCAPI_VERSION: Final = "2.6.0"
AMQP_BINDING_VERSION: Final = "0.2.0"
# What the AMQP binding's exchange ``type`` may say; any other type goes in ``x-type``.
_STANDARD_EXCHANGE_TYPES: Final = frozenset({"topic", "direct", "fanout", "default", "headers"})

DESCRIPTION: Final = """\
wapipe's contract on RabbitMQ. Other systems publish send jobs on the `wa.outbound` exchange
(routing key `send.<phone_number_id>`, persistent, `content_type` application/json, `message_id`
the job's idempotency key, publisher confirms and mandatory publishing advised) and follow what
happens by binding their own queues to `wa.events` (a topic exchange): `status.<status>`,
`message.<type>`, `account.<field>`, `handled.<type>`, `media.<stored|failed>`,
`outbound.<accepted|failed>`, `template.updated`, `phone_number.updated`. Each event's AMQP
`message_id` is its stable key: drop repeats by it. Channels are named `<exchange>/<binding key>`;
`publish` operations are what wapipe consumes, `subscribe` operations what it publishes.
Generated from shared/topology.py and the msgspec Structs by `python -m shared.schemas.export`."""


@dataclass
class _Binding:
    exchange: str
    key: str
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)


def _exchange_bindings() -> Iterator[tuple[str, str, str]]:
    """(source, destination, key) of every exchange-to-exchange binding."""
    declared = getattr(topology, "EXCHANGE_BINDINGS", None)
    if declared is not None:
        yield from declared
        return
    for key in topology.OUTPUT_KEYS:
        yield topology.EVENTS_EXCHANGE, topology.SINK_EXCHANGE, key


def bindings() -> list[_Binding]:
    """Every (exchange, binding key) of the topology, with what it routes to, in its order."""
    found: dict[tuple[str, str], _Binding] = {}

    def at(exchange: str, key: str) -> _Binding:
        return found.setdefault((exchange, key), _Binding(exchange, key))

    for queue in topology.QUEUES:
        for key in queue.binding_keys:
            at(queue.exchange, key).queues.append(queue.name)
    for source, destination, key in _exchange_bindings():
        at(source, key).exchanges.append(destination)
    for queue in topology.QUEUES:
        at(topology.DEAD_LETTER_EXCHANGE, queue.name).queues.append(queue.dead_letter_queue)
    for wait in topology.WAIT_QUEUES:
        at(wait.name, "").queues.append(wait.name)
    at(topology.FLOWS_EXCHANGE, topology.FLOWS_ROUTING_KEY).queues.append(topology.FLOWS_QUEUE)
    return list(found.values())


def _payload_name(binding: _Binding) -> str:
    if binding.exchange == topology.EVENTS_EXCHANGE:
        return binding.key.split(".")[0]
    if any(binding.exchange == wait.name for wait in topology.WAIT_QUEUES):
        return topology.OUTBOUND_EXCHANGE  # send jobs parked by the sender, coming back
    return binding.exchange


def _channel_name(binding: _Binding) -> str:
    return f"{binding.exchange}/{binding.key}" if binding.key else binding.exchange


def _exchange(name: str) -> dict[str, Any]:
    spec = next(e for e in topology.EXCHANGES if e.name == name)
    kind = str(spec.type.value)
    exchange: dict[str, Any] = {"name": name}
    if kind in _STANDARD_EXCHANGE_TYPES:
        exchange["type"] = kind
    else:
        exchange["x-type"] = kind
    exchange.update(durable=True, autoDelete=False, vhost="/")
    if spec.arguments:
        exchange["x-arguments"] = dict(spec.arguments)
    return exchange


def _queue(name: str) -> dict[str, Any]:
    for queue in topology.QUEUES:
        if queue.name == name:
            return {"name": name, "x-arguments": topology.queue_arguments(queue)}
    for wait in topology.WAIT_QUEUES:
        if wait.name == name:
            return {"name": name, "x-arguments": topology.wait_queue_arguments(wait)}
    if name == topology.FLOWS_QUEUE:
        return {"name": name, "x-arguments": dict(topology.FLOWS_QUEUE_ARGUMENTS)}
    return {"name": name, "x-arguments": dict(topology.DEAD_LETTER_ARGUMENTS)}


def _operation_id(direction: str, channel: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", channel.replace("#", "all").replace("*", "any"))
    return f"{direction}_{words.strip('_')}"


def _channel(binding: _Binding) -> dict[str, Any]:
    payload = PAYLOADS.get(_payload_name(binding), PAYLOADS["unknown"])
    direction = "publish" if payload.consumed_by_wapipe else "subscribe"
    name = _channel_name(binding)
    channel: dict[str, Any] = {
        "description": payload.description,
        "x-binding-key": binding.key,
        "x-queues": [_queue(queue) for queue in binding.queues],
        "x-exchanges": binding.exchanges,
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": _exchange(binding.exchange),
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
        direction: {
            "operationId": _operation_id(direction, name),
            "summary": payload.contract.title,
            "bindings": {
                "amqp": {
                    "deliveryMode": 2,
                    "mandatory": payload.mandatory,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
            "message": {"$ref": f"#/components/messages/{payload.contract.name}"},
        },
    }
    return channel


def _messages() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for contract in CONTRACTS:
        message: dict[str, Any] = {
            "name": contract.name,
            "title": contract.title,
            "contentType": contract.content_type,
            "payload": contract.schema_ref(),
            "x-amqp-message-id": contract.message_id,
        }
        if contract.name == "WebhookEvent":
            message["headers"] = _event_headers()
        messages[contract.name] = message
    return messages


def _event_headers() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "properties": {
            Header.PHONE_NUMBER_ID: {**text, "description": "absent on fields without a number"},
            Header.WABA_ID: text,
            Header.RECEIVED_AT: {**text, "description": "unix seconds, as text"},
        },
    }


def document(version: str) -> dict[str, Any]:
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:wapipe:broker",
        "info": {"title": "wapipe", "version": version, "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "url": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ at WAPIPE_AMQP_URL (here its default)",
            }
        },
        "channels": {_channel_name(b): _channel(b) for b in bindings()},
        "components": {"messages": _messages(), "schemas": component_schemas()},
    }
