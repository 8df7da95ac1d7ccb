"""A real Chromium (Debian's, never downloaded) driven by Playwright, for the web chat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
SERIOUS = ("serious", "critical")


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"]
        )
        try:
            yield browser
        finally:
            await browser.close()


def watch_policy(page: Page, problems: list[str]) -> None:
    """Collect what the page's Content-Security-Policy blocked, and script errors."""

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or message.type == "error":
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))


async def serious_violations(page: Page, **context: Any) -> list[str]:
    """axe-core's serious and critical WCAG 2.x A/AA findings on the page as it is now."""
    options = {
        "resultTypes": ["violations"],
        "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]},
    }
    results = await Axe().run(page, options=options, **context)
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)"
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]


BOT_MESSAGES = "document.querySelectorAll('#log .msg.bot').length"


async def bot_count(page: Page) -> int:
    count = await page.evaluate(BOT_MESSAGES)
    assert isinstance(count, int)
    return count


async def answered(page: Page, before: int) -> None:
    """Wait until the bot has said something after ``before`` of its messages (by locator:
    the page's policy rightly refuses the string evaluation ``wait_for_function`` does)."""
    await page.locator("#log .msg.bot").nth(before).wait_for(timeout=10_000)


async def press(page: Page, label: str) -> None:
    """Click the option button named ``label`` and wait for the bot's answer."""
    before = await bot_count(page)
    await page.locator("#choices").get_by_role("button", name=label, exact=True).click()
    await answered(page, before)


async def tick(page: Page, label: str) -> None:
    """Tick an option of a multiple choice (it is redrawn in place, pressed)."""
    button = page.locator("#choices").get_by_role("button", name=label, exact=True)
    await button.click()
    await (
        page.locator("#choices")
        .get_by_role("button", name=label, exact=True)
        .and_(page.locator("[aria-pressed=true]"))
        .wait_for(timeout=10_000)
    )


async def send_text(page: Page, text: str) -> None:
    """Type into the labelled message box and send it, then wait for the answer."""
    before = await bot_count(page)
    await page.get_by_label("Your message").fill(text)
    await page.get_by_role("button", name="Send", exact=True).click()
    await answered(page, before)


ENQUIRY = (
    "School or college staff",
    "Teacher",
    "Secondary school",
    "South East",
    "A social network or video app (TikTok, Instagram…)",
    "TikTok",
    "+Online Reputation",
    "Done",
    ":Fake account using our logo",
    ":Someone set up an account pretending to be the school.",
    "Done",
    ":https://www.tiktok.com/@not_our_school",
    "No, not yet",
    "No",
    "Reply here in this chat",
    "Skip",
)


async def whole_enquiry(page: Page) -> str:
    """The teacher's enquiry of the protocol tests, clicked and typed; its reference."""
    await page.locator("#choices button").first.wait_for(timeout=10_000)
    for step in ENQUIRY:
        if step.startswith(":"):
            await send_text(page, step[1:])
        elif step.startswith("+"):
            await tick(page, step[1:])
        else:
            await press(page, step)
    await press(page, "Send my enquiry")
    said = await page.locator("#log .msg.bot").all_inner_texts()
    sent = next(t for t in said if "reference is" in t)
    return str(sent).split("reference is ")[1][:9]
