"""The sender's early template check (``WAPIPE_SENDER_CHECK_TEMPLATES``): a template job whose
template is unknown, not approved, or given the wrong number of parameters fails before any
call (shared/template_guard.py decides, from what ``wapipe templates sync`` and the template
webhooks stored).

The stored templates are looked up once per ``FRESH_S`` per name and language, not per send:
on SQLite every transaction takes the one writer's lock, which the journal's group commit needs.
"""

from __future__ import annotations

import time
from typing import Final

from wapipe.shared.schemas.jobs import Job, SendJob, TemplateMessage
from wapipe.shared.schemas.outbound import Stage
from wapipe.shared.storage.templates import stored_template
from wapipe.shared.template_guard import StoredTemplate, refusal
from wapipe.workers.sender.journal import until_stored
from wapipe.workers.storage import Transactions

FRESH_S: Final = 10.0  # a template approved or paused meanwhile is seen this much later


class Templates:
    def __init__(self, transactions: Transactions, *, check: bool) -> None:
        self._transactions = transactions
        self._check = check
        self._found: dict[tuple[str, str], tuple[float, StoredTemplate | None]] = {}

    async def refusal(self, job: Job) -> tuple[Stage, str] | None:
        """Why this template job must fail before any call; None if it may go (or is none)."""
        if not self._check or not isinstance(job, SendJob):
            return None
        if not isinstance(job.message, TemplateMessage):
            return None
        template = job.message.template
        name, language = template.name, template.language.code
        now = time.monotonic()
        cached = self._found.get((name, language))
        if cached is None or now - cached[0] > FRESH_S:
            stored = await until_stored(
                self._transactions, lambda c: stored_template(c, name, language)
            )
            cached = self._found[(name, language)] = (now, stored)
        reason = refusal(template, cached[1])
        return ("invalid", reason) if reason is not None else None
