"""Typed management calls over the client (templates, numbers, profile): the answers decoded
into shared/cloudapi/nodes.py, and the template list followed through its pages.

Meta pages the template list with cursors (docs/cloudapi/templates.md): ``paging.next`` is there
while more follow, and ``after=<paging.cursors.after>`` asks for the next page. A WABA may hold
hundreds (6,000 at most when verified).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

import msgspec

from wapipe.shared.cloudapi.client import CloudApi
from wapipe.shared.cloudapi.errors import error_without_code
from wapipe.shared.cloudapi.nodes import (
    PHONE_NUMBER_FIELDS,
    PROFILE_FIELDS,
    TEMPLATE_FIELDS,
    BusinessProfile,
    PhoneNumberNode,
    PhoneNumberPage,
    ProfileAnswer,
    TemplateNode,
    TemplatePage,
    TemplateSummary,
)

PAGE_SIZE: Final = 100
T = TypeVar("T")

OnPage = Callable[[int, int | None], None]  # (templates so far, total if known)


def _typed(answer: dict[str, Any], kind: type[T], what: str) -> T:
    try:
        return msgspec.convert(answer, kind)
    except msgspec.ValidationError as exc:
        raise error_without_code(f"{what}: an answer of an unexpected shape: {exc}", 200) from exc


async def template_page(
    api: CloudApi, waba_id: str, *, after: str | None = None, limit: int = PAGE_SIZE
) -> TemplatePage:
    params = {"fields": TEMPLATE_FIELDS, "limit": str(limit), "summary": "total_count"}
    if after:
        params["after"] = after
    return _typed(await api.templates(waba_id, **params), TemplatePage, "template list")


async def all_templates(
    api: CloudApi, waba_id: str, *, limit: int = PAGE_SIZE, on_page: OnPage | None = None
) -> tuple[list[TemplateNode], TemplateSummary | None]:
    """Every template of the WABA, page after page; ``on_page`` hears the progress."""
    found: list[TemplateNode] = []
    after: str | None = None
    summary: TemplateSummary | None = None
    while True:
        page = await template_page(api, waba_id, after=after, limit=limit)
        found += page.data
        summary = summary or page.summary
        if on_page is not None:
            on_page(len(found), summary.total_count if summary else None)
        after = page.paging.cursors.after
        if page.paging.next is None or not page.data or not after:
            return found, summary


async def template(api: CloudApi, template_id: str) -> TemplateNode:
    answer = await api.node(template_id, TEMPLATE_FIELDS)
    return _typed(answer, TemplateNode, "template")


class EditAnswer(msgspec.Struct, frozen=True):
    success: bool = False


async def edit_template(api: CloudApi, template_id: str, changes: dict[str, Any]) -> bool:
    """Meta answers ``{"success": true}``; the template goes back to review."""
    return _typed(
        await api.edit_template(template_id, changes), EditAnswer, "template edit"
    ).success


async def phone_numbers(api: CloudApi, waba_id: str) -> list[PhoneNumberNode]:
    answer = await api.phone_numbers(waba_id, PHONE_NUMBER_FIELDS)
    return _typed(answer, PhoneNumberPage, "phone numbers").data


async def phone_number(api: CloudApi, phone_number_id: str) -> PhoneNumberNode:
    answer = await api.node(phone_number_id, PHONE_NUMBER_FIELDS)
    return _typed(answer, PhoneNumberNode, "phone number")


async def business_profile(api: CloudApi, phone_number_id: str) -> BusinessProfile:
    answer = await api.business_profile(phone_number_id, PROFILE_FIELDS)
    data = _typed(answer, ProfileAnswer, "business profile").data
    return data[0] if data else BusinessProfile()
