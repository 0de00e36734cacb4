"""Flow handlers that misbehave, for the endpoint's tests (WAPIPE_FLOW_HANDLERS)."""

from __future__ import annotations

import asyncio

from wapipe.shared.flows.protocol import FlowAnswer, FlowRequest, NextScreen


async def slow(request: FlowRequest) -> FlowAnswer | None:
    if request.flow_token != "slow":
        return None
    await asyncio.sleep(5)
    return NextScreen("LATE")


async def broken(request: FlowRequest) -> FlowAnswer | None:
    if request.flow_token != "broken":
        return None
    raise RuntimeError(f"the customer's answer {request.data} broke it")
