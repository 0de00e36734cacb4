"""A business profile update checked against Meta's limits before it is sent
(docs/cloudapi/business.md): pure. Each problem names its field."""

from __future__ import annotations

from typing import Any, Final

LIMITS: Final = {"about": 139, "address": 256, "description": 512, "email": 128}
WEBSITES_MAX: Final = 2
WEBSITE_MAX: Final = 256
VERTICALS: Final = frozenset(
    {"UNDEFINED", "OTHER", "ALCOHOL", "APPAREL", "AUTO", "BEAUTY", "EDU", "ENTERTAIN",
     "EVENT_PLAN", "FINANCE", "GOVT", "GROCERY", "HEALTH", "HOTEL", "NONPROFIT",
     "ONLINE_GAMBLING", "OTC_DRUGS", "PHYSICAL_GAMBLING", "PROF_SERVICES", "RESTAURANT",
     "RETAIL", "TRAVEL"}
)  # fmt: skip


def problems(update: dict[str, Any]) -> list[str]:
    """Every problem of the update; empty if it may be sent."""
    found = []
    for field, most in LIMITS.items():
        value = update.get(field)
        if value is not None and len(value) > most:
            found.append(f"{field}: at most {most} characters (it has {len(value)})")
    if update.get("about") == "":
        found.append("about: cannot be empty")
    email = update.get("email")
    if email and ("@" not in email or email.startswith("@") or email.endswith("@")):
        found.append(f"email: {email!r} is not an email address")
    websites = update.get("websites") or []
    if len(websites) > WEBSITES_MAX:
        found.append(f"websites: at most {WEBSITES_MAX}")
    for i, site in enumerate(websites):
        if not site.startswith(("http://", "https://")) or len(site) > WEBSITE_MAX:
            found.append(f"websites[{i}]: an http(s) URL of at most {WEBSITE_MAX} characters")
    vertical = update.get("vertical")
    if vertical is not None and vertical not in VERTICALS:
        found.append(f"vertical: one of {', '.join(sorted(VERTICALS))}")
    if not update:
        found.append("nothing to update: give at least one field")
    return found
