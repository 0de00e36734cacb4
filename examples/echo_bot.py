"""An echo bot: a model for your own handler. ``wapipe up`` runs it when
``WAPIPE_MESSAGE_HANDLERS`` is unset; elsewhere, set
``WAPIPE_MESSAGE_HANDLERS=wapipe.examples.echo_bot:handle``.

- text: answered with the same text, quoted ("menu" is answered with reply buttons);
- an image: answered with its size, looked up from the Cloud API (``GET /{media-id}``);
- a reply button tapped: answered with the choice;
- a system message (a changed number or BSUID): not answered, it is WhatsApp's notice;
- anything else: said what it was.

A handler gets a ``MessageContext`` and answers with ``context.reply(...)`` or
``context.reply_text(...)``: each answer is a send job, published once the handler returns, and
sent once however often the message comes (its key is ``reply:<wamid>:<n>``). A handler that
raises fails its message, which is tried again: keep what it does besides replying idempotent.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.schemas.interactive import (
    Body,
    ButtonAction,
    ButtonInteractive,
    Reply,
    ReplyButton,
)
from wapipe.shared.schemas.jobs import InteractiveMessage
from wapipe.shared.settings import Settings, from_env
from wapipe.workers.message import MessageContext

MENU: Final = (("hours", "Opening hours"), ("order", "Track my order"), ("human", "Talk to us"))
ANSWERS: Final = {
    "hours": "We are open 9:00 to 18:00, Monday to Saturday.",
    "order": "Your order is on its way.",
    "human": "Someone will write to you shortly.",
}


def menu() -> InteractiveMessage:
    buttons = tuple(ReplyButton(reply=Reply(id=key, title=title)) for key, title in MENU)
    return InteractiveMessage(
        interactive=ButtonInteractive(
            body=Body(text="How can we help?"), action=ButtonAction(buttons=buttons)
        )
    )


@cache
def _settings() -> Settings:
    return from_env()  # the worker's own environment: the Cloud API's address and token


async def image_size(media_id: str) -> int | None:
    async with CloudApi(GraphConfig.from_settings(_settings())) as api:
        return (await api.media_info(media_id)).size_bytes


async def handle(context: MessageContext) -> None:
    message = context.message
    if message.type == "system":
        return  # WhatsApp's notice of a changed number or id, not the customer writing
    if message.type == "text" and message.text is not None:
        if message.text.body.strip().lower() == "menu":
            context.reply(menu())
        else:
            context.reply_text(message.text.body, quote=True)
    elif message.type == "image" and message.image is not None:
        size = await image_size(message.image.id)
        shown = f"{size:,} bytes" if size is not None else "a size I could not learn"
        context.reply_text(f"Got your image: {shown}.", quote=True)
    elif message.type == "interactive" and message.interactive is not None:
        choice = message.interactive.button_reply or message.interactive.list_reply
        key = choice.id if choice is not None else ""
        context.reply_text(ANSWERS.get(key, f"You chose {key!r}."))
    else:
        context.reply_text(f"Thanks for the {message.type}.")
