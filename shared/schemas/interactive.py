"""Interactive messages: reply buttons, lists, call-to-action URLs, flows, products, catalogs,
location requests (docs/cloudapi/sending.md), each kind a Struct tagged by its ``type``.

Limits as ``msgspec.Meta``: body 1024, footer and header text 60, up to 3 reply buttons (title
20, id 256), a list's label 20 and up to 10 sections and 10 rows in all (row title 24,
description 72, id 200), up to 30 products. A list and a product list take a text header only,
a product none, a product list must have one. Header media is an uploaded id or a link.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from msgspec import Meta

from wapipe.shared.schemas.content import JobStruct, Link, MediaRef, NonEmpty

BODY_MAX: Final = 1024
FOOTER_MAX: Final = 60
HEADER_TEXT_MAX: Final = 60
REPLY_BUTTONS_MAX: Final = 3
SECTIONS_MAX: Final = 10
LIST_ROWS_MAX: Final = 10
PRODUCTS_MAX: Final = 30

Title24 = Annotated[str, Meta(min_length=1, max_length=24)]


def _sections_hold(count: int, most: int, what: str, titles: list[str | None]) -> None:
    if count > most:
        raise ValueError(f"the sections hold {count} {what}, more than {most}")
    if len(titles) > 1 and not all(titles):
        raise ValueError("every section needs a title when there is more than one")


# --- header, body, footer ------------------------------------------------------------------------


class TextHeader(JobStruct, frozen=True, kw_only=True, tag="text", tag_field="type"):
    text: Annotated[str, Meta(min_length=1, max_length=HEADER_TEXT_MAX)]


class ImageHeader(JobStruct, frozen=True, kw_only=True, tag="image", tag_field="type"):
    image: MediaRef


class VideoHeader(JobStruct, frozen=True, kw_only=True, tag="video", tag_field="type"):
    video: MediaRef


class DocumentHeader(JobStruct, frozen=True, kw_only=True, tag="document", tag_field="type"):
    document: MediaRef


Header = TextHeader | ImageHeader | VideoHeader | DocumentHeader


class Body(JobStruct, frozen=True, kw_only=True):
    text: Annotated[str, Meta(min_length=1, max_length=BODY_MAX)]


class Footer(JobStruct, frozen=True, kw_only=True):
    text: Annotated[str, Meta(min_length=1, max_length=FOOTER_MAX)]


# --- reply buttons -------------------------------------------------------------------------------


class Reply(JobStruct, frozen=True, kw_only=True):
    # No spaces at either end of the id (the API refuses them).
    id: Annotated[str, Meta(min_length=1, max_length=256, pattern=r"^\S(.*\S)?$")]
    title: Annotated[str, Meta(min_length=1, max_length=20)]


class ReplyButton(JobStruct, frozen=True, kw_only=True, tag="reply", tag_field="type"):
    reply: Reply


class ButtonAction(JobStruct, frozen=True, kw_only=True):
    buttons: Annotated[tuple[ReplyButton, ...], Meta(min_length=1, max_length=REPLY_BUTTONS_MAX)]

    def __post_init__(self) -> None:
        titles = [button.reply.title for button in self.buttons]
        if len(set(titles)) != len(titles):
            raise ValueError("reply buttons need titles of their own")


class ButtonInteractive(JobStruct, frozen=True, kw_only=True, tag="button", tag_field="type"):
    header: Header | None = None
    body: Body
    footer: Footer | None = None
    action: ButtonAction


# --- list ----------------------------------------------------------------------------------------


class Row(JobStruct, frozen=True, kw_only=True):
    id: Annotated[str, Meta(min_length=1, max_length=200)]
    title: Title24
    description: Annotated[str, Meta(max_length=72)] | None = None


class Section(JobStruct, frozen=True, kw_only=True):
    title: Title24 | None = None  # required when there is more than one section
    rows: Annotated[tuple[Row, ...], Meta(min_length=1, max_length=LIST_ROWS_MAX)]


class ListAction(JobStruct, frozen=True, kw_only=True):
    button: Annotated[str, Meta(min_length=1, max_length=20)]  # the label that opens the list
    sections: Annotated[tuple[Section, ...], Meta(min_length=1, max_length=SECTIONS_MAX)]

    def __post_init__(self) -> None:
        rows = sum(len(section.rows) for section in self.sections)
        _sections_hold(rows, LIST_ROWS_MAX, "rows", [s.title for s in self.sections])


class ListInteractive(JobStruct, frozen=True, kw_only=True, tag="list", tag_field="type"):
    header: TextHeader | None = None
    body: Body
    footer: Footer | None = None
    action: ListAction


# --- call to action, flow, location request ------------------------------------------------------


class CtaUrlParameters(JobStruct, frozen=True, kw_only=True):
    display_text: Annotated[str, Meta(min_length=1, max_length=20)]
    url: Link


class CtaUrlAction(JobStruct, frozen=True, kw_only=True, tag="cta_url", tag_field="name"):
    parameters: CtaUrlParameters


class CtaUrlInteractive(JobStruct, frozen=True, kw_only=True, tag="cta_url", tag_field="type"):
    header: Header | None = None
    body: Body
    footer: Footer | None = None
    action: CtaUrlAction


class FlowActionPayload(JobStruct, frozen=True, kw_only=True):
    screen: NonEmpty  # the first screen
    data: Annotated[dict[str, Any], Meta(min_length=1)] | None = None


class FlowParameters(JobStruct, frozen=True, kw_only=True):
    flow_message_version: NonEmpty  # "3"
    flow_id: NonEmpty | None = None
    flow_name: NonEmpty | None = None
    flow_cta: Annotated[str, Meta(min_length=1, max_length=30)]  # the button's text
    flow_token: NonEmpty | None = None
    mode: Literal["published", "draft"] | None = None
    flow_action: Literal["navigate", "data_exchange"] | None = None
    flow_action_payload: FlowActionPayload | None = None

    def __post_init__(self) -> None:
        if (self.flow_id is None) == (self.flow_name is None):
            raise ValueError("give exactly one of flow_id, flow_name")


class FlowAction(JobStruct, frozen=True, kw_only=True, tag="flow", tag_field="name"):
    parameters: FlowParameters


class FlowInteractive(JobStruct, frozen=True, kw_only=True, tag="flow", tag_field="type"):
    header: Header | None = None
    body: Body
    footer: Footer | None = None
    action: FlowAction


class SendLocationAction(
    JobStruct, frozen=True, kw_only=True, tag="send_location", tag_field="name"
):
    pass


class LocationRequestInteractive(
    JobStruct, frozen=True, kw_only=True, tag="location_request_message", tag_field="type"
):
    """Asks the user to share a location; it comes back as a ``location`` message in context."""

    body: Body
    action: SendLocationAction


# --- products and catalogs -----------------------------------------------------------------------


class ProductAction(JobStruct, frozen=True, kw_only=True):
    catalog_id: NonEmpty
    product_retailer_id: NonEmpty


class ProductInteractive(JobStruct, frozen=True, kw_only=True, tag="product", tag_field="type"):
    body: Body | None = None
    footer: Footer | None = None
    action: ProductAction


class ProductItem(JobStruct, frozen=True, kw_only=True):
    product_retailer_id: NonEmpty


class ProductSection(JobStruct, frozen=True, kw_only=True):
    title: Title24 | None = None  # required when there is more than one section
    product_items: Annotated[tuple[ProductItem, ...], Meta(min_length=1, max_length=PRODUCTS_MAX)]


class ProductListAction(JobStruct, frozen=True, kw_only=True):
    catalog_id: NonEmpty
    sections: Annotated[tuple[ProductSection, ...], Meta(min_length=1, max_length=SECTIONS_MAX)]

    def __post_init__(self) -> None:
        items = sum(len(section.product_items) for section in self.sections)
        _sections_hold(items, PRODUCTS_MAX, "products", [s.title for s in self.sections])


class ProductListInteractive(
    JobStruct, frozen=True, kw_only=True, tag="product_list", tag_field="type"
):
    header: TextHeader
    body: Body
    footer: Footer | None = None
    action: ProductListAction


class CatalogParameters(JobStruct, frozen=True, kw_only=True):
    thumbnail_product_retailer_id: NonEmpty | None = None


class CatalogAction(JobStruct, frozen=True, kw_only=True, tag="catalog_message", tag_field="name"):
    parameters: CatalogParameters | None = None


class CatalogInteractive(
    JobStruct, frozen=True, kw_only=True, tag="catalog_message", tag_field="type"
):
    body: Body
    footer: Footer | None = None
    action: CatalogAction


Interactive = (
    ButtonInteractive
    | ListInteractive
    | CtaUrlInteractive
    | FlowInteractive
    | ProductInteractive
    | ProductListInteractive
    | CatalogInteractive
    | LocationRequestInteractive
)
