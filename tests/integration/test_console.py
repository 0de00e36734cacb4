"""The sandbox's console in a real browser (Debian's chromium, driven by Playwright), against the
whole system of `wapipe up`: type as the customer, see the example bot's answers arrive with
their read ticks, and check the screenshot."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import free_port
from tests.integration.local_system import CUSTOMER, SANDBOX_URL, command, wapipe_up

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (.ci/run installs Debian's)"
)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH, HEIGHT = 1400, 900
READ_BLUE = (52, 183, 241)  # the read ticks (console.css)
OUTBOUND_GREEN = (220, 248, 198)  # the business's bubbles
SAMPLE_GREEN = (37, 211, 102)  # the sandbox's sample image, one pixel shown 160 px wide
FAILED_RED = (221, 51, 51)  # a failed send's mark and its code
LIMIT_ORANGE = (179, 92, 0)  # a limit hit among the refusals


def tomorrow() -> str:
    """The date the console's clock shows a day on (the page's locale: en-US, M/D/YYYY)."""
    day = datetime.now(UTC) + timedelta(days=1)
    return f"{day.month}/{day.day}/{day.year}"


def count(image: Image.Image, colour: tuple[int, int, int], within: int = 12) -> int:
    """Pixels of about this colour."""
    data = image.convert("RGB").tobytes()
    red, green, blue = colour
    return sum(
        1
        for index in range(0, len(data), 3)
        if abs(data[index] - red) <= within
        and abs(data[index + 1] - green) <= within
        and abs(data[index + 2] - blue) <= within
    )


@pytest.mark.timeout(240)
async def test_a_customer_types_in_the_console_and_sees_the_bots_answers_read(
    vhost_url: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    async with (
        wapipe_up(vhost_url, tmp_path, free_port()) as system,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(
            viewport={"width": WIDTH, "height": HEIGHT}, locale="en-US", timezone_id="UTC"
        )
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{SANDBOX_URL}/_sandbox/console/")
        await expect(page.locator("#live")).to_have_text("live", timeout=15_000)
        await expect(page.locator("#customer-list li.selected")).to_contain_text("16315551181")

        await page.fill("#text", "hello from the browser")
        await page.click("#send")
        echo = page.locator(".msg.out", has_text="hello from the browser")
        await expect(echo.locator(".ticks")).to_have_attribute(
            "data-status", "read", timeout=30_000
        )

        await page.fill("#text", "a photo of the shop")
        await page.click("#send-image")
        await expect(page.locator(".msg.in[data-type=image] img")).to_be_visible(timeout=10_000)
        sized = page.locator(".msg.out", has_text="Got your image")
        await expect(sized.locator(".ticks")).to_have_attribute(
            "data-status", "read", timeout=30_000
        )

        await page.fill("#text", "menu")
        await page.click("#send")
        button = page.locator(".msg.out .buttons button", has_text="Opening hours")
        await expect(button).to_be_visible(timeout=30_000)
        await button.click()
        answer = page.locator(".msg.out", has_text="We are open")
        await expect(answer.locator(".ticks")).to_have_attribute(
            "data-status", "read", timeout=30_000
        )

        # A fault set from the console: the next send meets 130429, shown as a limit hit; the
        # sender waits and sends it again.
        await page.fill("#add-fault input[name=code]", "130429")
        await page.fill("#add-fault input[name=count]", "1")
        await page.click("#add-fault button:text('add')")
        await expect(page.locator("#faults li")).to_have_text("messages: 130429 at 1, next 1")
        limited = ("send", "text", "--to", CUSTOMER, "--body", "after a limit", "--wait")
        code, _, _ = await command(system, *limited)
        assert code == 0
        await expect(page.locator('#refusals li.limit[data-code="130429"]')).to_have_count(1)
        await expect(page.locator("#fault-hits li")).to_have_count(1)
        await expect(page.locator("#faults li")).to_have_count(0, timeout=5_000)
        after = page.locator(".msg.out", has_text="after a limit")
        await expect(after.locator(".ticks")).to_have_attribute(
            "data-status", "read", timeout=30_000
        )

        # A day later the window has closed: a send is accepted, then fails with its code.
        await page.click("#advance-day")
        await expect(page.locator("#clock")).to_contain_text(tomorrow(), timeout=5_000)
        code, _, _ = await command(system, "send", "text", "--to", CUSTOMER, "--body", "late")
        assert code == 0
        late = page.locator(".msg.out", has_text="late")
        await expect(late.locator(".ticks")).to_have_attribute(
            "data-status", "failed", timeout=30_000
        )
        await expect(late.locator(".failure")).to_contain_text("131047")

        webhooks = page.locator("#webhooks li .answer-ok")
        assert await webhooks.count() >= 12  # 4 messages in, 4 replies x sent, delivered, read
        shot = tmp_path / "console.png"
        await page.screenshot(path=str(shot))
        await browser.close()
    assert errors == []

    image = Image.open(shot)
    assert image.size == (WIDTH, HEIGHT)
    assert count(image, READ_BLUE, within=40) > 30  # the 4 replies' read ticks (grey before)
    assert count(image, OUTBOUND_GREEN) > 20_000  # the replies' bubbles
    assert count(image, SAMPLE_GREEN) > 100 * 100  # the customer's image, inline
    assert count(image, FAILED_RED, within=40) > 100  # the late send's ✗ and "131047 ..."
    assert count(image, LIMIT_ORANGE, within=40) > 100  # "130429 Rate limit hit ..."


@pytest.mark.timeout(240)
async def test_the_console_shows_a_flow_its_screens_the_answers_and_the_endpoints_health(
    vhost_url: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    from tests.integration.flows.up_support import (
        CLOUD_API,
        open_flow,
        published_booking,
        sandbox,
        send_flow_message,
    )

    answers = {"APPOINTMENT": {"department": "beard", "slot": "mon-10"}, "DETAILS": {"name": "Bo"}}
    async with (
        wapipe_up(vhost_url, tmp_path, free_port(), **CLOUD_API) as system,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(
            viewport={"width": WIDTH, "height": HEIGHT}, locale="en-US", timezone_id="UTC"
        )
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{SANDBOX_URL}/_sandbox/console/")
        await expect(page.locator("#live")).to_have_text("live", timeout=15_000)

        number, flow_id = await published_booking(system)
        wamid = await send_flow_message(system, number, flow_id, "booking:console")
        flow_message = page.locator(f'.msg.out[data-wamid="{wamid}"]')
        await expect(flow_message.locator(".flow-cta")).to_have_text("▤ Book", timeout=30_000)
        await open_flow(wamid, answers)

        card = page.locator(f'.msg.flow[data-message-id="{wamid}"]')
        screens = card.locator(".flow-screen")
        await expect(screens).to_have_count(3, timeout=10_000)
        await expect(screens.locator(".flow-title")).to_have_text(
            ["Book an appointment", "Your details", "Confirm"]
        )
        appointment = card.locator('.flow-screen[data-screen="APPOINTMENT"]')
        await expect(appointment.locator('[data-field="department"]')).to_contain_text(
            'Service* Dropdown: "beard"'
        )
        await expect(card.locator('[data-field="name"]').first).to_contain_text('"Bo"')
        calls = card.locator(".flow-call")
        await expect(calls).to_have_count(4)
        await expect(calls.first).to_contain_text("endpoint INIT → 200 APPOINTMENT")
        await expect(calls.last).to_contain_text("from SUMMARY → 200 SUCCESS")
        await expect(card.locator(".flow-closed")).to_contain_text('"name":"Bo"')
        reply = page.locator(".msg.in[data-type=interactive]", has_text="[flow sent]")
        await expect(reply).to_contain_text('"flow_token":"booking:console"')
        health = page.locator(f'#flow-health li[data-flow-id="{flow_id}"]')
        await expect(health).to_contain_text("booking: 4 requests, errors 0%, p50 ")

        # The endpoint breaks (a fault set from the console): the customer sees the error, and
        # the health panel counts it.
        await page.select_option("#add-fault select[name=endpoint]", "flows_endpoint")
        await page.fill("#add-fault input[name=code]", "503")
        await page.fill("#add-fault input[name=count]", "1")
        await page.click("#add-fault button:text('add')")
        await expect(page.locator("#faults li")).to_have_text("flows_endpoint: 503 at 1, next 1")
        broken = await send_flow_message(system, number, flow_id, "booking:broken")
        played = await open_flow(broken, answers)
        assert played["error"] == "the endpoint answered 503"
        card = page.locator(f'.msg.flow[data-message-id="{broken}"]')
        await expect(card.locator(".flow-call.answer-bad")).to_contain_text("INIT → 503")
        await expect(card.locator(".flow-error")).to_contain_text("the endpoint answered 503")
        await expect(page.locator("#fault-hits li")).to_contain_text("503 met http://")
        await expect(page.locator("#faults li")).to_have_count(0)
        await expect(health).to_contain_text("booking: 5 requests, errors 20%")
        assert (await sandbox("GET", f"/_sandbox/flows/{flow_id}/health"))["errors"] == 1
        await page.screenshot(path=str(tmp_path / "flow.png"))
        await browser.close()
    assert errors == []
