"""Template messages (docs/cloudapi/sending.md):
a name, a language, and the parameters of each component.

Components and parameters are Structs tagged by ``type``. Positional parameters are sent in
order; named ones carry ``parameter_name``. Text parameters: at most 60 characters in a header,
1024 in a body that comes with other components, 32768 in a body alone. A button component names
its ``sub_type`` and ``index`` (0-9). Media parameters are an uploaded id or a link. Whether the
count of parameters matches the approved template only the Cloud API knows (132000).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from msgspec import Meta

from wapipe.shared.schemas.content import (
    JobStruct,
    Location,
    Media,
    MediaRef,
    NonEmpty,
    exactly_one_of,
)

HEADER_TEXT_MAX: Final = 60
BODY_TEXT_MAX: Final = 1024
BODY_ALONE_TEXT_MAX: Final = 32768

# --- parameters ----------------------------------------------------------------------------------


class TextParameter(JobStruct, frozen=True, kw_only=True, tag="text", tag_field="type"):
    text: Annotated[str, Meta(min_length=1, max_length=BODY_ALONE_TEXT_MAX)]
    parameter_name: Annotated[str, Meta(pattern=r"^[a-z0-9_]+$")] | None = None  # named params


class Currency(JobStruct, frozen=True, kw_only=True):
    fallback_value: NonEmpty
    code: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]  # ISO 4217
    amount_1000: int  # the amount times 1000


class CurrencyParameter(JobStruct, frozen=True, kw_only=True, tag="currency", tag_field="type"):
    currency: Currency


class DateTime(JobStruct, frozen=True, kw_only=True):
    fallback_value: NonEmpty  # the Cloud API always shows this


class DateTimeParameter(JobStruct, frozen=True, kw_only=True, tag="date_time", tag_field="type"):
    date_time: DateTime


class ImageParameter(JobStruct, frozen=True, kw_only=True, tag="image", tag_field="type"):
    image: MediaRef


class VideoParameter(JobStruct, frozen=True, kw_only=True, tag="video", tag_field="type"):
    video: MediaRef


class TemplateDocument(Media, frozen=True, kw_only=True):
    filename: NonEmpty | None = None


class DocumentParameter(JobStruct, frozen=True, kw_only=True, tag="document", tag_field="type"):
    document: Annotated[TemplateDocument, exactly_one_of("id", "link")]


class LocationParameter(JobStruct, frozen=True, kw_only=True, tag="location", tag_field="type"):
    location: Location


class PayloadParameter(JobStruct, frozen=True, kw_only=True, tag="payload", tag_field="type"):
    payload: NonEmpty  # a quick-reply button's payload, echoed when the user taps it


class CouponCodeParameter(
    JobStruct, frozen=True, kw_only=True, tag="coupon_code", tag_field="type"
):
    coupon_code: Annotated[str, Meta(min_length=1, max_length=15)]


class FlowButtonAction(JobStruct, frozen=True, kw_only=True):
    flow_token: NonEmpty | None = None
    flow_action_data: dict[str, Any] | None = None


class ActionParameter(JobStruct, frozen=True, kw_only=True, tag="action", tag_field="type"):
    action: FlowButtonAction  # a flow button's token and first screen's data


Parameter = (
    TextParameter
    | CurrencyParameter
    | DateTimeParameter
    | ImageParameter
    | VideoParameter
    | DocumentParameter
    | LocationParameter
    | PayloadParameter
    | CouponCodeParameter
    | ActionParameter
)

# --- components ----------------------------------------------------------------------------------


def _longest_text(parameters: tuple[Parameter, ...]) -> int:
    return max((len(p.text) for p in parameters if isinstance(p, TextParameter)), default=0)


class HeaderComponent(JobStruct, frozen=True, kw_only=True, tag="header", tag_field="type"):
    parameters: tuple[Parameter, ...] = ()

    def __post_init__(self) -> None:
        if _longest_text(self.parameters) > HEADER_TEXT_MAX:
            raise ValueError(f"a header's text parameter is longer than {HEADER_TEXT_MAX}")


class BodyComponent(JobStruct, frozen=True, kw_only=True, tag="body", tag_field="type"):
    parameters: tuple[Parameter, ...] = ()


class ButtonComponent(JobStruct, frozen=True, kw_only=True, tag="button", tag_field="type"):
    sub_type: Literal["quick_reply", "url", "copy_code", "flow", "catalog", "mpm", "voice_call"]
    index: Annotated[int, Meta(ge=0, le=9)]  # the button's position in the template
    parameters: tuple[Parameter, ...] = ()


Component = HeaderComponent | BodyComponent | ButtonComponent


class Language(JobStruct, frozen=True, kw_only=True):
    code: Annotated[str, Meta(pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$", examples=["en_US"])]
    policy: Literal["deterministic"] | None = None


class Template(JobStruct, frozen=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")]
    language: Language
    components: tuple[Component, ...] = ()

    def __post_init__(self) -> None:
        bodies = [c for c in self.components if isinstance(c, BodyComponent)]
        if len(bodies) < len(self.components):
            for body in bodies:
                if _longest_text(body.parameters) > BODY_TEXT_MAX:
                    raise ValueError(
                        f"a body's text parameter is longer than {BODY_TEXT_MAX} "
                        "(allowed only when the body is the template's one component)"
                    )
