"""Typed keys of the sandbox application's state."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from wapipe.sandbox.config import SandboxConfig
from wapipe.sandbox.faults import Faults
from wapipe.sandbox.feed import Feed
from wapipe.sandbox.state import World
from wapipe.sandbox.webhooks import WebhookSender

CONFIG: Final = web.AppKey("config", SandboxConfig)
TOKEN: Final = web.AppKey("token", str)
WORLD: Final = web.AppKey("world", World)
SENDER: Final = web.AppKey("sender", WebhookSender)
FAULTS: Final = web.AppKey("faults", Faults)
FEED: Final = web.AppKey("feed", Feed)
