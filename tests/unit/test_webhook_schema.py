"""The webhook schema against every sample body in shared/cloudapi/webhooks, plus crafted edges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.helpers import cloudapi_dir
from wapipe.shared.schemas.webhook import (
    FIELD_VALUE_TYPES,
    Envelope,
    Message,
    MessagesValue,
    Status,
    decode_envelope,
    decode_value,
)
from wapipe.shared.schemas.webhook_fields import (
    AccountReviewUpdate,
    AccountUpdate,
    PhoneNumberQualityUpdate,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
    UserPreferencesValue,
)


def webhooks_dir() -> Path:
    return cloudapi_dir() / "webhooks"


SAMPLE_NAMES = sorted(path.name for path in webhooks_dir().glob("*.json"))


def load(name: str) -> Envelope:
    return decode_envelope((webhooks_dir() / name).read_bytes())


def first_value(name: str) -> object:
    change = load(name).entry[0].changes[0]
    return decode_value(change.field, change.value)


def messages_value(name: str) -> MessagesValue:
    value = first_value(name)
    assert isinstance(value, MessagesValue)
    return value


def first_message(name: str) -> Message:
    return messages_value(name).messages[0]


def first_status(name: str) -> Status:
    return messages_value(name).statuses[0]


def envelope_with(field: str, value: dict[str, Any]) -> bytes:
    """A one-change body, serialised the way Meta does (slashes escaped)."""
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "109876543210987", "changes": [{"field": field, "value": value}]}],
    }
    return json.dumps(body).replace("/", "\\/").encode()


def message_body(message: dict[str, Any]) -> bytes:
    return envelope_with(
        "messages",
        {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550101234", "phone_number_id": "1187"},
            "messages": [message],
        },
    )


def decode_single_message(message: dict[str, Any]) -> Message:
    change = decode_envelope(message_body(message)).entry[0].changes[0]
    value = decode_value(change.field, change.value)
    assert isinstance(value, MessagesValue)
    return value.messages[0]


# --- Every sample -----------------------------------------------------------------------------


def test_the_sample_folder_holds_bodies() -> None:
    assert len(SAMPLE_NAMES) >= 40, webhooks_dir()


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_decodes_to_the_value_type_of_its_field(name: str) -> None:
    envelope = load(name)

    assert envelope.object == "whatsapp_business_account"
    assert envelope.entry
    for entry in envelope.entry:
        assert entry.changes
        for change in entry.changes:
            value = decode_value(change.field, change.value)
            expected = FIELD_VALUE_TYPES.get(change.field, dict)
            assert isinstance(value, expected)


# --- Messages ---------------------------------------------------------------------------------


def test_text_message_carries_sender_profile_and_common_fields() -> None:
    value = messages_value("message_text.json")
    message = value.messages[0]

    assert value.messaging_product == "whatsapp"
    assert value.metadata.phone_number_id == "118765432109876"
    assert value.contacts[0].profile is not None
    assert value.contacts[0].profile.name == "Kerry Fisher"
    assert value.contacts[0].user_id == "US.13491208655302741918"
    assert message.from_ == "16315551181"
    assert message.id == "wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTg0001QjE3RjA5QkQ1NkQzRgA="
    assert message.timestamp == "1763990000"
    assert message.type == "text"
    assert message.text is not None
    assert message.text.body == "Hi, is my order 1187 shipped?"
    assert message.image is None
    assert message.context is None


def test_username_user_has_a_user_id_and_no_wa_id() -> None:
    value = messages_value("message_text_username_user.json")
    contact = value.contacts[0]

    assert contact.wa_id is None
    assert contact.user_id == "BR.88120034561209871123"
    assert contact.profile is not None
    assert contact.profile.username == "joana.r"


def test_image_message_carries_media_id_mime_type_and_base64_sha256() -> None:
    image = first_message("message_image.json").image

    assert image is not None
    assert image.id == "1234567890123451"
    assert image.mime_type == "image/jpeg"
    assert image.sha256 == "HOlWtMwUmRvDqMbpEj6dRI9JBy0OtXWlWMeGTpx5mDA="
    assert image.caption == "receipt"


def test_document_message_carries_filename_and_caption() -> None:
    document = first_message("message_document.json").document

    assert document is not None
    assert document.filename == "contract-2026.pdf"
    assert document.caption == "contract"
    assert document.mime_type == "application/pdf"


def test_voice_note_is_flagged_voice() -> None:
    audio = first_message("message_audio_voice.json").audio

    assert audio is not None
    assert audio.voice is True
    assert audio.mime_type == "audio/ogg; codecs=opus"


def test_video_without_caption_has_none_caption() -> None:
    video = first_message("message_video.json").video

    assert video is not None
    assert video.id == "1234567890123452"
    assert video.caption is None


def test_animated_sticker_is_flagged_animated() -> None:
    sticker = first_message("message_sticker_animated.json").sticker

    assert sticker is not None
    assert sticker.animated is True
    assert sticker.mime_type == "image/webp"


def test_location_keeps_coordinates_as_floats_and_the_place() -> None:
    location = first_message("message_location.json").location

    assert location is not None
    assert location.latitude == pytest.approx(-23.561414)
    assert location.longitude == pytest.approx(-46.655881)
    assert location.name == "Av. Paulista 1578"
    assert location.url == "https://masp.org.br"


def test_shared_contact_card_keeps_name_phone_email_and_org() -> None:
    cards = first_message("message_contacts.json").contacts

    assert len(cards) == 1
    card = cards[0]
    assert card.name is not None
    assert card.name.formatted_name == "Dana Ortiz"
    assert card.phones[0].wa_id == "16315550142"
    assert card.phones[0].type == "CELL"
    assert card.emails[0].email == "dana@example.com"
    assert card.org is not None
    assert card.org.company == "Ortiz Tiles"
    assert card.addresses == ()


def test_reaction_carries_emoji_and_reacted_wamid() -> None:
    reaction = first_message("message_reaction.json").reaction

    assert reaction is not None
    assert reaction.emoji == "\N{THUMBS UP SIGN}"
    assert reaction.message_id == "wamid.HBgLMTYzMTU1NTExODEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


def test_removed_reaction_has_no_emoji_whether_absent_or_empty() -> None:
    absent = first_message("message_reaction_removed.json").reaction
    empty = decode_single_message(
        {
            "from": "16315551181",
            "id": "wamid.X",
            "timestamp": "1763990000",
            "type": "reaction",
            "reaction": {"message_id": "wamid.Y", "emoji": ""},
        }
    ).reaction

    assert absent is not None
    assert absent.emoji is None
    assert empty is not None
    assert not empty.emoji


def test_interactive_button_reply_carries_id_title_and_tapped_message() -> None:
    message = first_message("message_interactive_button_reply.json")

    assert message.interactive is not None
    assert message.interactive.type == "button_reply"
    assert message.interactive.button_reply is not None
    assert message.interactive.button_reply.id == "resched-yes"
    assert message.interactive.button_reply.title == "Reschedule"
    assert message.interactive.list_reply is None
    assert message.context is not None
    assert message.context.id == "wamid.HBgLMTYzMTU1NTExODEVAgARGBJCVVRUT05TMDAwMDAwMDEA"


def test_interactive_list_reply_carries_description() -> None:
    interactive = first_message("message_interactive_list_reply.json").interactive

    assert interactive is not None
    assert interactive.type == "list_reply"
    assert interactive.list_reply is not None
    assert interactive.list_reply.id == "slot-0930"
    assert interactive.list_reply.description == "Tuesday morning"


def test_flow_reply_keeps_response_json_as_a_string() -> None:
    interactive = first_message("message_interactive_flow_reply.json").interactive

    assert interactive is not None
    assert interactive.type == "nfm_reply"
    assert interactive.nfm_reply is not None
    assert interactive.nfm_reply.name == "flow"
    assert interactive.nfm_reply.response_json is not None
    assert json.loads(interactive.nfm_reply.response_json)["flow_token"] == "tok-77"


def test_call_permission_reply_decodes() -> None:
    message = decode_single_message(
        {
            "from": "16315551181",
            "id": "wamid.X",
            "timestamp": "1763990000",
            "type": "interactive",
            "interactive": {
                "type": "call_permission_reply",
                "call_permission_reply": {
                    "response": "accept",
                    "expiration_timestamp": 1764594800,
                    "response_source": "user_action",
                },
            },
        }
    )

    assert message.interactive is not None
    reply = message.interactive.call_permission_reply
    assert reply is not None
    assert reply.response == "accept"
    assert reply.expiration_timestamp == 1764594800


def test_template_quick_reply_button_carries_payload_and_label() -> None:
    button = first_message("message_button_template_quick_reply.json").button

    assert button is not None
    assert button.payload == "STOP_PROMOS"
    assert button.text == "Stop promotions"


def test_order_lists_its_product_items() -> None:
    order = first_message("message_order.json").order

    assert order is not None
    assert order.catalog_id == "2141234567890"
    assert [(item.product_retailer_id, item.quantity) for item in order.product_items] == [
        ("sku-boot-42", 1),
        ("sku-sock-3", 3),
    ]
    assert order.product_items[0].item_price == pytest.approx(89.9)
    assert order.product_items[0].currency == "USD"


def test_system_changed_number_carries_the_new_wa_id() -> None:
    system = first_message("message_system_changed_number.json").system

    assert system is not None
    assert system.type == "user_changed_number"
    assert system.new_wa_id == "16315559999"


def test_identity_change_carries_the_identity_block() -> None:
    message = first_message("message_system_identity_changed.json")

    assert message.system is not None
    assert message.system.type == "customer_identity_changed"
    assert message.system.customer == "16315551181"
    assert message.identity is not None
    assert message.identity.acknowledged is True
    assert message.identity.created_timestamp == 1763989000
    assert message.identity.hash == "b1c2d3e4f5"


def test_edit_carries_original_wamid_and_the_new_content() -> None:
    edit = first_message("message_edit.json").edit

    assert edit is not None
    assert (
        edit.original_message_id == "wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTgwMDAxQjE3RjA5QkQ1NkQzRgA="
    )
    assert edit.message is not None
    assert edit.message.type == "text"
    assert edit.message.text is not None
    assert edit.message.text.body == "Hi, is my order 1188 shipped?"


def test_revoke_carries_the_deleted_wamid() -> None:
    revoke = first_message("message_revoke.json").revoke

    assert revoke is not None
    assert revoke.original_message_id == (
        "wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTgwMDAxQjE3RjA5QkQ1NkQzRgA="
    )


def test_request_welcome_has_no_payload() -> None:
    message = first_message("message_request_welcome.json")

    assert message.type == "request_welcome"
    assert message.text is None


def test_unsupported_message_carries_error_131051() -> None:
    message = first_message("message_unsupported.json")

    assert message.type == "unsupported"
    assert message.errors[0].code == 131051
    assert message.errors[0].error_data is not None
    assert message.errors[0].error_data.details == "Message type is currently not supported."


def test_reply_context_names_the_quoted_message_and_its_sender() -> None:
    context = first_message("message_text_reply_context.json").context

    assert context is not None
    assert context.from_ == "15550101234"
    assert context.id == "wamid.HBgLMTYzMTU1NTExODEVAgARGBJBQkNERUYwMTIzNDU2Nzg5AA=="
    assert context.forwarded is None


def test_forwarded_message_is_flagged_forwarded() -> None:
    context = first_message("message_text_forwarded.json").context

    assert context is not None
    assert context.forwarded is True
    assert context.frequently_forwarded is True


def test_product_enquiry_names_the_referred_product() -> None:
    context = first_message("message_text_product_enquiry.json").context

    assert context is not None
    assert context.referred_product is not None
    assert context.referred_product.catalog_id == "2141234567890"
    assert context.referred_product.product_retailer_id == "sku-boot-42"


def test_ad_referral_carries_source_and_click_id() -> None:
    referral = first_message("message_text_ad_referral.json").referral

    assert referral is not None
    assert referral.source_type == "ad"
    assert referral.source_id == "120211234567890123"
    assert referral.source_url == "https://fb.me/3cr4Wqqkk"
    assert referral.media_type == "image"
    assert referral.ctwa_clid is not None
    assert referral.ctwa_clid.startswith("ARAkLkA8rmlF")


def test_unknown_message_type_decodes_with_its_type_and_no_known_payload() -> None:
    message = decode_single_message(
        {
            "from": "16315551181",
            "id": "wamid.POLL",
            "timestamp": "1763990000",
            "type": "poll",
            "poll": {"question": "Lunch?", "options": ["yes", "no"]},
        }
    )

    assert message.type == "poll"
    assert message.id == "wamid.POLL"
    assert message.text is None
    assert message.interactive is None


def test_message_without_id_is_rejected() -> None:
    body = message_body({"from": "16315551181", "timestamp": "1763990000", "type": "text"})
    change = decode_envelope(body).entry[0].changes[0]

    with pytest.raises(msgspec.ValidationError, match="id"):
        decode_value(change.field, change.value)


# --- Statuses ---------------------------------------------------------------------------------


def test_failed_status_carries_error_131026_with_details() -> None:
    status = first_status("status_failed_131026.json")

    assert status.status == "failed"
    assert status.conversation is None
    assert status.pricing is None
    assert len(status.errors) == 1
    error = status.errors[0]
    assert error.code == 131026
    assert error.title == "Message undeliverable"
    assert error.error_data is not None
    assert error.error_data.details == "Message Undeliverable."
    assert error.href is None


def test_failed_status_131047_carries_href() -> None:
    error = first_status("status_failed_131047.json").errors[0]

    assert error.code == 131047
    assert (
        error.href == "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
    )


def test_delivered_status_carries_pricing_without_conversation() -> None:
    status = first_status("status_delivered.json")

    assert status.status == "delivered"
    assert status.timestamp == "1763990102"
    assert status.recipient_id == "16315551181"
    assert status.conversation is None
    assert status.pricing is not None
    assert status.pricing.billable is True
    assert status.pricing.pricing_model == "PMP"
    assert status.pricing.category == "utility"
    assert status.pricing.type == "regular"


def test_free_service_delivery_is_not_billable() -> None:
    pricing = first_status("status_delivered_free_service.json").pricing

    assert pricing is not None
    assert pricing.billable is False
    assert pricing.type == "free_customer_service"


def test_sent_status_carries_conversation_and_callback_data() -> None:
    status = first_status("status_sent.json")

    assert status.status == "sent"
    assert status.biz_opaque_callback_data == "job:7f3a9c"
    assert status.conversation is not None
    assert status.conversation.id == "c0ffee00c0ffee00c0ffee00c0ffee00"
    assert status.conversation.expiration_timestamp == "1764076500"
    assert status.conversation.origin is not None
    assert status.conversation.origin.type == "utility"


def test_played_and_read_statuses_keep_their_status_string() -> None:
    assert first_status("status_played_voice.json").status == "played"
    assert first_status("status_read.json").status == "read"


def test_unknown_status_string_decodes() -> None:
    body = envelope_with(
        "messages",
        {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550101234", "phone_number_id": "1187"},
            "statuses": [{"id": "wamid.X", "status": "warning", "timestamp": "1763990000"}],
        },
    )
    change = decode_envelope(body).entry[0].changes[0]
    value = decode_value(change.field, change.value)

    assert isinstance(value, MessagesValue)
    assert value.statuses[0].status == "warning"
    assert value.statuses[0].recipient_id is None


def test_value_level_errors_decode_without_messages_or_statuses() -> None:
    value = messages_value("value_level_error.json")

    assert value.messages == ()
    assert value.statuses == ()
    assert value.contacts == ()
    assert value.errors[0].code == 131000
    assert value.errors[0].error_data is not None
    assert value.errors[0].error_data.details == (
        "Unknown error occurred while processing the webhook."
    )


# --- Batches and the envelope -----------------------------------------------------------------


def test_batch_keeps_every_entry_change_message_and_status_in_order() -> None:
    envelope = load("batch_two_entries_mixed.json")

    assert [entry.id for entry in envelope.entry] == ["109876543210987", "109876543210999"]
    assert [change.field for change in envelope.entry[1].changes] == [
        "messages",
        "message_template_status_update",
    ]
    first, second = (decode_value(c.field, c.value) for c in envelope.entry[0].changes)
    assert isinstance(first, MessagesValue)
    assert isinstance(second, MessagesValue)
    assert [status.id[-8:] for status in first.statuses] == ["MDAwMDEA", "MDAwMDIA"]
    assert [m.text.body for m in second.messages if m.text] == ["first", "second"]


def test_messages_entry_has_no_time_and_account_entry_has_an_int_time() -> None:
    assert load("message_text.json").entry[0].time is None
    assert load("phone_number_quality_update.json").entry[0].time == 1763990400


def test_decode_value_accepts_plain_bytes() -> None:
    value = decode_value("account_review_update", b'{"decision":"APPROVED"}')

    assert value == AccountReviewUpdate(decision="APPROVED")


def test_body_that_is_not_json_is_rejected() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_envelope(b"not json")


# --- Other fields -----------------------------------------------------------------------------


def test_template_status_update_carries_event_id_name_language_and_reason() -> None:
    value = first_value("template_status_approved.json")

    assert value == TemplateStatusUpdate(
        event="APPROVED",
        message_template_id=594425479261597,
        message_template_name="order_shipped",
        message_template_language="en_US",
        reason="NONE",
    )


def test_template_id_sent_as_a_string_also_decodes() -> None:
    value = decode_value(
        "message_template_status_update",
        b'{"event":"PAUSED","message_template_id":"594425479261597","reason":null,'
        b'"other_info":{"title":"FIRST_PAUSE","description":"low quality"}}',
    )

    assert isinstance(value, TemplateStatusUpdate)
    assert value.message_template_id == "594425479261597"
    assert value.reason is None
    assert value.other_info is not None
    assert value.other_info.title == "FIRST_PAUSE"


def test_template_quality_update_carries_old_and_new_score() -> None:
    value = first_value("template_quality_update.json")

    assert isinstance(value, TemplateQualityUpdate)
    assert (value.previous_quality_score, value.new_quality_score) == ("GREEN", "YELLOW")
    assert value.message_template_id == 594425479261597


def test_template_category_update_carries_old_and_new_category() -> None:
    value = first_value("template_category_update.json")

    assert isinstance(value, TemplateCategoryUpdate)
    assert (value.previous_category, value.new_category) == ("UTILITY", "MARKETING")
    assert value.correct_category is None


def test_phone_number_quality_update_carries_event_and_tiers() -> None:
    value = first_value("phone_number_quality_update.json")

    assert value == PhoneNumberQualityUpdate(
        display_phone_number="15550101234",
        event="THROUGHPUT_UPGRADE",
        current_limit="TIER_10K",
        old_limit="TIER_2K",
    )


def test_account_violation_carries_its_type() -> None:
    value = first_value("account_update_violation.json")

    assert isinstance(value, AccountUpdate)
    assert value.event == "ACCOUNT_VIOLATION"
    assert value.phone_number == "15550101234"
    assert value.violation_info is not None
    assert value.violation_info.violation_type == "SCAM"
    assert value.ban_info is None


def test_account_update_keeps_varying_sub_objects_as_dicts() -> None:
    value = decode_value(
        "account_update",
        b'{"event":"PARTNER_ADDED","waba_info":{"waba_id":"1","owner_business_id":"2"},'
        b'"restriction_info":[{"restriction_type":"RESTRICTED_ADD_PHONE_NUMBER_ACTION",'
        b'"expiration":1764000000}]}',
    )

    assert isinstance(value, AccountUpdate)
    assert value.waba_info == {"waba_id": "1", "owner_business_id": "2"}
    assert value.restriction_info[0].expiration == 1764000000


def test_user_preferences_stop_carries_an_int_timestamp() -> None:
    value = first_value("user_preferences_stop_marketing.json")

    assert isinstance(value, UserPreferencesValue)
    assert value.metadata is not None
    assert value.metadata.phone_number_id == "118765432109876"
    preference = value.user_preferences[0]
    assert preference.value == "stop"
    assert preference.category == "marketing_messages"
    assert preference.wa_id == "16315551181"
    assert preference.timestamp == 1763990300


def test_unknown_future_field_decodes_as_a_plain_dict() -> None:
    value = first_value("unknown_field_future.json")

    assert value == {"anything": {"nested": [1, 2, 3]}}


def test_every_documented_field_has_a_value_type() -> None:
    documented = {
        "messages",
        "message_template_status_update",
        "message_template_quality_update",
        "message_template_components_update",
        "template_category_update",
        "phone_number_quality_update",
        "phone_number_name_update",
        "account_update",
        "account_alerts",
        "account_review_update",
        "business_capability_update",
        "security",
        "user_preferences",
        "flows",  # docs/cloudapi/flows.md
    }

    assert set(FIELD_VALUE_TYPES) == documented


def test_unknown_keys_are_ignored_at_every_level() -> None:
    body = (webhooks_dir() / "message_image.json").read_bytes()
    raw = json.loads(body)
    raw["added_by_meta"] = 1
    entry = raw["entry"][0]
    entry["new_entry_key"] = "x"
    value = entry["changes"][0]["value"]
    value["new_value_key"] = {"a": 1}
    value["metadata"]["new_metadata_key"] = True
    value["messages"][0]["new_message_key"] = [1]
    value["messages"][0]["image"]["new_media_key"] = "x"

    change = decode_envelope(json.dumps(raw).encode()).entry[0].changes[0]
    decoded = decode_value(change.field, change.value)

    assert decoded == messages_value("message_image.json")
