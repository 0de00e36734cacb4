"""What the Cloud API client needs of the settings, and nothing more: the client takes this,
not the whole Settings (shared/cloudapi/client.py)."""

from __future__ import annotations

from typing import Any

import msgspec

from wapipe.shared.cloudapi.versions import DEFAULT_GRAPH_VERSION
from wapipe.shared.settings import Settings


class GraphConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What the client needs of the settings, and nothing more (the ``WAPIPE_GRAPH_*`` and
    ``WAPIPE_ACCESS_TOKEN*`` variables)."""

    graph_url: str = "https://graph.facebook.com"
    graph_version: str = DEFAULT_GRAPH_VERSION  # the newest (shared/cloudapi/versions.py)
    access_token: str = ""
    access_token_file: str = ""  # read again by reload_token(): a rotated secret
    timeout_s: float = 30.0  # a whole call, retries apart
    max_connections: int = 64
    retries: int = 3  # more tries of a call that failed transiently (or 429)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> GraphConfig:
        config = cls(
            graph_url=settings.graph_url,
            graph_version=settings.graph_version,
            access_token=settings.access_token,
            access_token_file=settings.access_token_file,
            timeout_s=settings.graph_timeout_s,
            max_connections=settings.graph_max_connections,
            retries=settings.graph_retries,
        )
        return msgspec.structs.replace(config, **overrides) if overrides else config
