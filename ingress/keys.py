"""Typed keys of the ingress application's state (set in app.py, read by the handlers)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from wapipe.ingress.metrics import IngressMetrics
from wapipe.ingress.publish import Publisher
from wapipe.shared.settings import Settings

SETTINGS: Final = web.AppKey("settings", Settings)
SECRETS: Final[web.AppKey[tuple[bytes, ...]]] = web.AppKey("secrets")
METRICS: Final = web.AppKey("metrics", IngressMetrics)
PUBLISHER: Final = web.AppKey("publisher", Publisher)
