"""The web chat in a real browser: Debian's Chromium driven by Playwright (no browser is
downloaded), against the whole service on loopback with the fake Telegram and Slack.

Accessibility is checked with axe-core (shipped by axe-playwright-python): no serious or
critical WCAG 2.2 A/AA violation on the chat page or the widget. Screenshots for the
README are written to docs/ as the tests pass.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page
from sqlalchemy import func, select

from storage import cases as case_store
from storage.models import Case, TranscriptEntry, WebMessage, WebSession
from tests.fakes.telegram_api import FakeTelegram
from tests.support.browser import (
    answered,
    bot_count,
    chromium,
    press,
    send_text,
    serious_violations,
    watch_policy,
    whole_enquiry,
)
from tests.support.paths import ROOT
from tests.support.telegram import free_port
from tests.support.webchat import DESK, WebService, serving, web_service, web_settings

pytestmark = pytest.mark.e2e
DOCS = ROOT / "docs"
DESCRIPTION = "Someone set up an account pretending to be the school."


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Browser tests run on SQLite; the protocol tests cover PostgreSQL."""
    return f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def open_chat(browser: Browser, service: WebService, **options: object) -> Page:
    page = await browser.new_page(**options)  # type: ignore[arg-type]
    problems: list[str] = []
    watch_policy(page, problems)
    page.problems = problems  # type: ignore[attr-defined]
    await page.goto(service.base + "/chat")
    await page.locator("#choices button").first.wait_for(timeout=10_000)
    return page


def blocked(page: Page) -> list[str]:
    problems = page.problems  # type: ignore[attr-defined]
    assert isinstance(problems, list)
    return problems


async def test_browser_whole_enquiry_becomes_a_case_and_its_card(
    sqlite_url: str, browser: Browser
) -> None:
    async with web_service(sqlite_url, slack=True) as service:
        page = await open_chat(browser, service, viewport={"width": 1280, "height": 900})
        assert await serious_violations(page) == []
        reference = await whole_enquiry(page)
        assert service.slack is not None
        await service.slack.wait_for(
            lambda s: any(reference in json.dumps(c) for c in s.messages(DESK)), timeout=10
        )
        async with service.helpline.core.sessions() as session:
            case = (await session.execute(select(Case))).scalars().one()
        assert (case.reference, case.channel) == (reference, "web")
        # "While you wait" links are real links to http(s) only, opened in a new tab.
        links = page.locator("#log .msg.bot a")
        assert await links.count() > 0
        for href in await links.evaluate_all("as => as.map(a => a.href)"):
            assert href.startswith(("https://", "http://"))
        assert await serious_violations(page) == []
        assert blocked(page) == []
        DOCS.mkdir(exist_ok=True)
        await page.locator("#log .msg.bot", has_text="reference is").scroll_into_view_if_needed()
        await page.screenshot(path=str(DOCS / "webchat-desktop.png"))


async def test_browser_child_is_signposted(sqlite_url: str, browser: Browser) -> None:
    async with web_service(sqlite_url) as service:
        page = await open_chat(browser, service)
        await press(page, "I'm under 18")
        said = " ".join(await page.locator("#log .msg.bot").all_inner_texts())
        assert "Childline" in said and "0800 1111" in said


async def test_browser_risk_phrase_puts_999_first(sqlite_url: str, browser: Browser) -> None:
    async with web_service(sqlite_url) as service:
        page = await open_chat(browser, service)
        before = await bot_count(page)
        await send_text(page, "a pupil says she will kill herself tonight")
        said = await page.locator("#log .msg.bot").all_inner_texts()
        assert "999" in said[before]


async def test_browser_keyboard_only(sqlite_url: str, browser: Browser) -> None:
    async with web_service(sqlite_url) as service:
        page = await open_chat(browser, service)
        # Focus starts on the first option; Enter presses it; focus follows the answer.
        focused = await page.evaluate("document.activeElement.textContent")
        assert focused == "School or college staff"
        before = await bot_count(page)
        await page.keyboard.press("Enter")
        await answered(page, before)
        await page.locator("#choices button:focus", has_text="Teacher").wait_for()
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"  # focus is visible
        # Tab reaches the Back button and then the textbox, all in order.
        names = []
        for _ in range(12):
            await page.keyboard.press("Tab")
            names.append(
                await page.evaluate(
                    "document.activeElement.textContent || document.activeElement.id"
                )
            )
        assert "Back" in names and "message" in names
        await page.get_by_label("Your message").focus()
        await page.keyboard.type("teacher")
        before = await bot_count(page)
        await page.keyboard.press("Enter")
        await answered(page, before)
        mine = await page.locator("#log .msg.you").all_inner_texts()
        assert mine[-1].endswith("teacher")


async def test_browser_quick_exit_replaces_the_page_and_forgets_the_chat(
    sqlite_url: str, browser: Browser
) -> None:
    async with FakeTelegram() as tg:
        port = free_port()
        neutral = f"http://127.0.0.1:{port}/livez"
        settings = web_settings(tg, sqlite_url, http_port=port, web_exit_url=neutral)
        async with serving(settings) as service:
            for how in ("button", "shift"):
                page = await open_chat(browser, service)
                await page.get_by_role("checkbox", name="Keep this chat on this device").check()
                await press(page, "School or college staff")
                if how == "button":
                    await page.get_by_role("button", name="Leave this site").click()
                else:
                    for _ in range(3):
                        await page.keyboard.press("Shift")
                await page.wait_for_url(neutral, timeout=10_000)
                kept = await page.evaluate("localStorage.length + sessionStorage.length")
                assert kept == 0
                await eventually(service, lambda left: left == 0)  # the beacon arrived
                async with service.helpline.core.sessions() as session:
                    shown = await session.scalar(select(func.count()).select_from(WebMessage))
                assert shown == 0
                await page.close()


async def test_browser_delete_what_i_told_you_asks_then_erases_the_chat_and_case(
    sqlite_url: str, browser: Browser
) -> None:
    async with web_service(sqlite_url, slack=True) as service:
        page = await open_chat(browser, service, viewport={"width": 1280, "height": 900})
        reference = await whole_enquiry(page)
        assert service.slack is not None
        await service.slack.wait_for(
            lambda s: any(reference in json.dumps(c) for c in s.messages(DESK)), timeout=10
        )
        erase = page.get_by_role("button", name="Delete what I told you", exact=True)
        yes = page.locator("#choices").get_by_role("button", name="Yes, delete it", exact=True)
        # By mouse: asked first, and "No, keep it" keeps everything.
        await erase.click()
        await yes.wait_for(timeout=10_000)
        assert "can't be undone" in await page.locator("#log .msg.bot").last.inner_text()
        assert await serious_violations(page) == []
        DOCS.mkdir(exist_ok=True)
        await page.emulate_media(reduced_motion="reduce")  # the log scrolled, not scrolling
        await page.locator("#log .msg.bot").last.scroll_into_view_if_needed()
        await page.screenshot(path=str(DOCS / "webchat-delete.png"))
        await press(page, "No, keep it")
        assert "nothing has been deleted" in " ".join(
            await page.locator("#log .msg.bot").all_inner_texts()
        )
        assert DESCRIPTION in await page.locator("#log").inner_text()
        async with service.helpline.core.sessions() as session:
            case = await case_store.get_case(session, reference)
        assert case is not None and case.description == DESCRIPTION

        # By keyboard: the control, then its question's first button, each with Enter.
        await erase.focus()
        await page.keyboard.press("Enter")
        await page.locator("#choices button:focus", has_text="Yes, delete it").wait_for()
        before = await bot_count(page)
        await page.keyboard.press("Enter")
        await answered(page, before)
        said = await page.locator("#log .msg.bot").last.inner_text()
        assert "I've deleted what you told me" in said and reference in said
        shown = await page.locator("#log").inner_text()
        assert DESCRIPTION not in shown and "not_our_school" not in shown
        mine = await page.locator("#log .msg.you").all_inner_texts()
        assert mine[-1].endswith("Yes, delete it")
        assert all(text.endswith("(deleted)") for text in mine[:-1])
        async with service.helpline.core.sessions() as session:
            case = await case_store.get_case(session, reference)
        assert case is not None and case.description is None and case.erased_at is not None
        await service.slack.wait_for(
            lambda s: "the enquirer asked for it in the chat" in json.dumps(s.messages(DESK)),
            timeout=10,
        )
        # A reload replays the blanked chat, not what was said.
        await page.reload()
        await page.locator("#log .msg.bot", has_text="I've deleted").wait_for(timeout=10_000)
        assert DESCRIPTION not in await page.locator("#log").inner_text()
        assert await serious_violations(page) == []
        assert blocked(page) == []


async def test_browser_pasted_image_is_refused_and_never_sent(
    sqlite_url: str, browser: Browser
) -> None:
    async with web_service(sqlite_url) as service:
        page = await open_chat(browser, service)
        await page.get_by_label("Your message").focus()
        await page.evaluate(
            """() => {
                const data = new DataTransfer();
                const png = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
                data.items.add(new File([png], "photo.png", { type: "image/png" }));
                const paste = new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
                document.getElementById("message").dispatchEvent(paste);
            }"""
        )
        notice = page.get_by_role("alert")
        await notice.wait_for(timeout=5_000)
        assert "nothing was sent" in await notice.inner_text()
        assert await page.get_by_label("Your message").input_value() == ""
        async with service.helpline.core.sessions() as session:
            kinds = (await session.execute(select(TranscriptEntry.kind))).scalars().all()
        assert "attachment_refused" not in kinds  # it never left the browser
        assert await page.locator("input[type=file]").count() == 0


async def test_browser_script_typed_is_shown_as_text(sqlite_url: str, browser: Browser) -> None:
    async with web_service(sqlite_url) as service:
        page = await open_chat(browser, service)
        typed = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>hi</b>'
        await send_text(page, typed)
        mine = page.locator("#log .msg.you").last
        assert (await mine.inner_text()).endswith(typed)
        assert await page.evaluate("window.pwned === undefined")
        assert await page.locator("#log script, #log img, #log b").count() == 0
        assert blocked(page) == []


async def test_browser_reconnects_after_a_restart_with_nothing_lost_or_repeated(
    sqlite_url: str, browser: Browser
) -> None:
    async with FakeTelegram() as tg:
        settings = web_settings(tg, sqlite_url)
        async with serving(settings) as service:
            page = await open_chat(browser, service)
            await press(page, "School or college staff")
        # The service is down: the page says so and tries again; then it is back.
        await page.get_by_text("Reconnecting").wait_for(timeout=10_000)
        async with serving(settings):
            await page.get_by_text("Connected.").wait_for(timeout=20_000)
            await press(page, "Teacher")
            ids = await page.locator("#log .msg").evaluate_all("ms => ms.map(m => m.id)")
            assert ids == [f"m{n}" for n in range(1, len(ids) + 1)]  # no gap, no repeat
            # A reload replays the whole conversation from the server, in order, once.
            await page.reload()
            await page.locator("#choices button").first.wait_for()
            replayed = await page.locator("#log .msg").evaluate_all("ms => ms.map(m => m.id)")
            assert replayed == ids


async def test_browser_practitioner_reply_live_and_after_reopening(
    sqlite_url: str, browser: Browser
) -> None:
    async with web_service(sqlite_url, slack=True) as service:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(service.base + "/chat")
        await page.get_by_role("checkbox", name="Keep this chat on this device").check()
        reference = await whole_enquiry(page)
        desk = service.helpline.core.desk
        assert (await desk.reply(reference, "sam", "We've reported the account for you.")).ok
        service.helpline.core.wakeup.set()
        await page.locator("#log .msg.practitioner").wait_for(timeout=10_000)
        await page.close()
        assert (await desk.reply(reference, "sam", "TikTok has removed it.")).ok
        service.helpline.core.wakeup.set()
        # Tab closed; the chat was kept on this device: it is all there on coming back.
        again = await context.new_page()
        await again.goto(service.base + "/chat")
        replies = again.locator("#log .msg.practitioner")
        await replies.nth(1).wait_for(timeout=10_000)
        texts = await replies.all_inner_texts()
        assert "reported the account" in texts[0] and "removed it" in texts[1]
        await context.close()


async def test_browser_not_kept_chat_is_gone_in_a_new_tab(
    sqlite_url: str, browser: Browser
) -> None:
    async with web_service(sqlite_url) as service:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(service.base + "/chat")
        await press(page, "School or college staff")
        await page.close()
        fresh = await context.new_page()
        await fresh.goto(service.base + "/chat")
        await fresh.locator("#choices button").first.wait_for()
        assert await fresh.locator("#log .msg.you").count() == 0
        await context.close()


async def test_browser_phone_width_and_zoom(sqlite_url: str, browser: Browser) -> None:
    async with web_service(sqlite_url) as service:
        page = await open_chat(browser, service, viewport={"width": 320, "height": 640})
        await press(page, "School or college staff")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320  # nothing scrolls sideways
        assert await serious_violations(page) == []
        DOCS.mkdir(exist_ok=True)
        await page.screenshot(path=str(DOCS / "webchat-phone.png"))
        # 200% zoom of a 640 px window is a 320 px layout at twice the size: still reflows.
        zoomed = await open_chat(
            browser, service, viewport={"width": 640, "height": 800}, device_scale_factor=2
        )
        await zoomed.evaluate("document.body.style.zoom = '2'")
        assert await zoomed.evaluate("document.documentElement.scrollWidth") <= 640


async def _host_site(chat_base: str, port: int) -> web.AppRunner:
    """A page of 'the helpline's own site' on another origin, with the widget's one tag,
    and a neutral page the quick exit goes to."""
    page = f"""<!doctype html><html lang="en"><head><title>Helpline site</title></head>
<body><main><h1>Online safety helpline</h1><p>Advice for professionals.</p></main>
<script src="{chat_base}/chat/widget.js" data-label="Chat with us" data-colour="#005a30"
        data-text-colour="#ffffff" data-position="right"></script></body></html>"""

    async def home(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def neutral(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>Weather</title>", content_type="text/html")

    async def no_icon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", home)
    app.router.add_get("/weather", neutral)
    app.router.add_get("/favicon.ico", no_icon)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def test_browser_widget_on_the_helplines_site(sqlite_url: str, browser: Browser) -> None:
    port = free_port()
    host = f"http://127.0.0.1:{port}"
    async with web_service(sqlite_url, web_origins=host, web_exit_url=f"{host}/weather") as service:
        runner = await _host_site(service.base, port)
        try:
            page = await browser.new_page()
            problems: list[str] = []
            watch_policy(page, problems)
            await page.goto(f"{host}/")
            launcher = page.get_by_role("button", name="Chat with us")
            background = await launcher.evaluate("b => getComputedStyle(b).backgroundColor")
            assert background == "rgb(0, 90, 48)"  # the colour from data-colour
            await launcher.click()
            chat = page.frame_locator("iframe[title='Chat with us']")
            await chat.locator("#choices button").first.wait_for(timeout=10_000)
            assert await serious_violations(page) == []
            await chat.get_by_role("button", name="School or college staff").click()
            await chat.get_by_role("button", name="Teacher", exact=True).wait_for()
            DOCS.mkdir(exist_ok=True)
            await page.screenshot(path=str(DOCS / "webchat-widget.png"))
            await chat.get_by_role("button", name="Leave this site").click()
            await page.wait_for_url(f"{host}/weather", timeout=10_000)
            await eventually(service, lambda left: left == 0)
            # Shift three times on the host page itself, while the chat is open, too.
            await page.goto(f"{host}/")
            await page.get_by_role("button", name="Chat with us").click()
            await chat.locator("#choices button").first.wait_for(timeout=10_000)
            await eventually(service, lambda left: left == 1)
            await page.locator("h1").click()
            for _ in range(3):
                await page.keyboard.press("Shift")
            await page.wait_for_url(f"{host}/weather", timeout=10_000)
            await eventually(service, lambda left: left == 0)
            assert problems == []
        finally:
            await runner.cleanup()


async def eventually(service: WebService, check: Callable[[int], bool]) -> None:
    """Wait (up to 10 s) until the number of web chat sessions passes ``check``."""
    for _ in range(200):
        async with service.helpline.core.sessions() as session:
            left = await session.scalar(select(func.count()).select_from(WebSession))
        if check(int(left or 0)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"web chat sessions: {left}")
