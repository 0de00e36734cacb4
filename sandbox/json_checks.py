"""Checks on the JSON of a Cloud API request, with Meta's codes: a wrong JSON type is 100, a missing
part 131008, a bad value 131009 (docs/cloudapi/errors.md). Each raises a GraphError naming the field
by its path."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from wapipe.sandbox.errors import invalid_parameter, invalid_value, missing_parameter


def object_at(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_parameter(f"{path} must be a JSON object")
    return value


def list_at(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_parameter(f"{path} must be a JSON array")
    return value


def required_object(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    if parent.get(key) is None:
        raise missing_parameter(f"{path} is required")
    return object_at(parent[key], path)


def required_list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    if parent.get(key) is None:
        raise missing_parameter(f"{path} is required")
    return list_at(parent[key], path)


def optional_list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    value = parent.get(key)
    return [] if value is None else list_at(value, path)


def optional_str(
    parent: dict[str, Any], key: str, path: str, max_len: int | None = None
) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_parameter(f"{path} must be a string")
    if max_len is not None and len(value) > max_len:
        raise invalid_value(f"{path} is longer than {max_len} characters")
    return value


def string_at(parent: dict[str, Any], key: str, path: str, max_len: int | None = None) -> str:
    value = optional_str(parent, key, path, max_len)
    if not value:
        raise missing_parameter(f"{path} is required")
    return value


def optional_bool(parent: dict[str, Any], key: str, path: str) -> None:
    if parent.get(key) is not None and not isinstance(parent[key], bool):
        raise invalid_parameter(f"{path} must be true or false")


def one_of(parent: dict[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> None:
    value = optional_str(parent, key, path)
    if value is not None and value not in allowed:
        raise invalid_value(f"{path} must be one of {', '.join(allowed)}")


def count_between(items: list[Any], low: int, high: int, path: str) -> None:
    if not low <= len(items) <= high:
        raise invalid_value(f"{path} must hold {low} to {high} items, not {len(items)}")


def http_url(url: str, path: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_value(f"{path} must be an http(s) URL")


def media_source(media: dict[str, Any], path: str) -> None:
    """A media object by id or by http(s) link, not both."""
    media_id = optional_str(media, "id", f"{path}.id")
    link = optional_str(media, "link", f"{path}.link")
    if not media_id and not link:
        raise missing_parameter(f"{path}.id or {path}.link is required")
    if media_id and link:
        raise invalid_parameter(f"{path} takes id or link, not both")
    if link:
        http_url(link, f"{path}.link")


async def json_body(request: web.Request) -> Any:
    """The request's JSON; 100 when it is not JSON (the shape is the caller's to check)."""
    try:
        return await request.json()
    except ValueError:
        raise invalid_parameter("the request body is not valid JSON") from None
