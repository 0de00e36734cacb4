"""Typed keys of the sandbox application's state."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from sandbox.config import SandboxConfig
from sandbox.faults import Faults
from sandbox.feed import Feed
from sandbox.state import World
from sandbox.webhooks import WebhookSender

CONFIG: Final = web.AppKey("config", SandboxConfig)
TOKEN: Final = web.AppKey("token", str)
WORLD: Final = web.AppKey("world", World)
SENDER: Final = web.AppKey("sender", WebhookSender)
FAULTS: Final = web.AppKey("faults", Faults)
FEED: Final = web.AppKey("feed", Feed)
