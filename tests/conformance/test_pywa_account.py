"""pywa reads and updates the business profile and reads the phone numbers through the sandbox;
every answer parses."""

from __future__ import annotations

import asyncio

from pywa import WhatsApp

from tests.conformance.conftest import Served


async def test_the_business_profile_reads_and_updates_in_pywa(
    served: Served, pywa_client: WhatsApp
) -> None:
    updated = await asyncio.to_thread(
        pywa_client.update_business_profile, about="Open 9 to 5", websites=["https://shop.example"]
    )
    assert updated.success
    profile = await asyncio.to_thread(pywa_client.get_business_profile)
    assert profile.about == "Open 9 to 5"
    assert list(profile.websites or ()) == ["https://shop.example"]


async def test_the_phone_numbers_read_in_pywa(served: Served, pywa_client: WhatsApp) -> None:
    number = await asyncio.to_thread(pywa_client.get_business_phone_number)
    numbers = await asyncio.to_thread(lambda: list(pywa_client.get_business_phone_numbers()))
    assert number.id == served.phone_id
    assert [n.id for n in numbers] == [served.phone_id]
