"""Business logic for the message worker's tests, loaded by name ("module:function")."""

from __future__ import annotations

from wapipe.workers.message import MessageContext

CALLS: list[str] = []


async def record(context: MessageContext) -> None:
    """Remembers each message; answers "echo ..." texts; fails on "boom"."""
    CALLS.append(context.wamid)
    text = context.message.text.body if context.message.text else ""
    if text == "boom":
        raise RuntimeError("the business logic failed")
    if text.startswith("echo "):
        context.reply_text(text.removeprefix("echo "), quote=True)


def not_async(context: MessageContext) -> None:
    """Not a coroutine function: refused at start-up."""
