"""The Graph API's Flows calls (docs/cloudapi/flows.md, "Flows API" and "Keys"), on the Cloud
API client's retry policy."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import aiohttp

from wapipe.shared.cloudapi.client import CloudApi

FLOW_FIELDS: Final = (
    "id,name,status,categories,validation_errors,json_version,data_api_version,"
    "endpoint_uri,preview,health_status"
)


class FlowsApi(CloudApi):
    async def set_public_key(self, phone_number_id: str, public_pem: str) -> dict[str, Any]:
        path = f"/{phone_number_id}/whatsapp_business_encryption"
        return await self._json("POST", path, data={"business_public_key": public_pem})

    async def public_key(self, phone_number_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/{phone_number_id}/whatsapp_business_encryption")

    async def flows(self, waba_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/{waba_id}/flows")

    async def flow(self, flow_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/{flow_id}", params={"fields": FLOW_FIELDS})

    async def create_flow(
        self,
        waba_id: str,
        name: str,
        categories: Sequence[str],
        flow_json: Mapping[str, Any],
        endpoint_uri: str | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name,
            "categories": list(categories),
            "flow_json": json.dumps(flow_json),
        }
        if endpoint_uri:
            body["endpoint_uri"] = endpoint_uri
        return await self._json("POST", f"/{waba_id}/flows", json=body, repeatable=False)

    async def update_flow_json(self, flow_id: str, flow_json: Mapping[str, Any]) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("name", "flow.json")
        form.add_field("asset_type", "FLOW_JSON")
        form.add_field(
            "file", json.dumps(flow_json), filename="flow.json", content_type="application/json"
        )
        return await self._json("POST", f"/{flow_id}/assets", data=form, tries=1)

    async def update_flow(self, flow_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        return await self._json("POST", f"/{flow_id}", json=dict(metadata))

    async def publish_flow(self, flow_id: str) -> dict[str, Any]:
        return await self._json("POST", f"/{flow_id}/publish")

    async def deprecate_flow(self, flow_id: str) -> dict[str, Any]:
        return await self._json("POST", f"/{flow_id}/deprecate")

    async def delete_flow(self, flow_id: str) -> dict[str, Any]:
        return await self._json("DELETE", f"/{flow_id}")
