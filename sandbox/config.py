"""What the sandbox is told at start-up beyond wapipe's shared settings: `wapipe sandbox`'s flags.

The shared settings give it the valid bearer token (``WAPIPE_ACCESS_TOKEN``) and the secret it
signs webhooks with (the first of ``WAPIPE_APP_SECRETS``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from wapipe.sandbox.limits import PairRate, Throughput
from wapipe.sandbox.state import REQUEST_LOG_SIZE, Clock, Template, World
from wapipe.sandbox.webhooks import Chaos, Retry
from wapipe.shared.cloudapi.versions import DEFAULT_GRAPH_VERSION

# What `wapipe sandbox` starts with, so the README's `wapipe send template` works at once.
EXAMPLE_TEMPLATE: Final = {
    "name": "shipping_update",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {
            "type": "BODY",
            "text": "Hi {{1}}, your order has shipped.",
            "example": {"body_text": [["Ana"]]},
        }
    ],
}


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 8090
    webhook_url: str = "http://127.0.0.1:8080/webhook"  # the local ingress
    # The version the sandbox names in URLs it hands out; it serves every available one.
    graph_version: str = DEFAULT_GRAPH_VERSION
    rate_per_s: int = 80  # throughput per phone number (docs/cloudapi/limits.md)
    pair_interval_s: float = 6.0  # pair rate: one message every this many seconds...
    pair_burst: int = 45  # ...in bursts of up to this many
    media_url_ttl_s: float = 300.0  # a looked-up download URL works this long
    inbound_media_ttl_s: float = 7 * 24 * 3600.0  # an inbound media id resolves this long
    request_log_size: int = REQUEST_LOG_SIZE  # Graph requests kept for /_sandbox/requests
    chaos: Chaos = field(default_factory=Chaos)
    retry: Retry = field(default_factory=Retry)
    business_phone: str = "15550101234"
    customers: tuple[tuple[str, str], ...] = (("16315551181", "Kerry Fisher"),)
    templates: tuple[dict[str, Any], ...] = ()  # approved from the start (creation payloads)

    def new_world(self) -> World:
        """The world the sandbox starts with: one business with its templates, the customers."""
        world = World(
            clock=Clock(),
            throughput=Throughput(self.rate_per_s),
            pair_rate=PairRate(self.pair_interval_s, self.pair_burst),
            requests=deque(maxlen=self.request_log_size),
        )
        business = world.add_business(self.business_phone)
        for number, template in enumerate(self.templates):
            # Ids outside the counter's range: the ids handed out later do not move.
            template_id = str(5944 * 10**12 - number)
            world.template_records[template_id] = Template(
                template_id, business.waba_id, dict(template), status="APPROVED"
            )
        for wa_id, name in self.customers:
            world.add_customer(wa_id, name)
        return world
