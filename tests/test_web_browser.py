"""Every page driven in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, through Selenium), with and without JavaScript: subscribe → the
confirmation mail in an in-process aiosmtpd → confirm → manage → edit → pause →
unsubscribe. The server runs in the test's event loop; the browser is driven from a
thread, so the loop keeps answering it.

With ``SCREENSHOTS_DIR=<dir>`` the run also saves the front page and a manage page
at phone (390 px) and desktop (1280 px) widths there (``docs/`` holds the README's).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.daemon.resources import build_service
from bot.delivery.planning import plan_matches
from bot.matching.step import match_cycle
from bot.models import Links, Paper
from bot.selfservice import DELIVER_CHOICES
from bot.service import Paperbell
from bot.settings import load_settings
from bot.store.protocols import Store
from handlers.web import build_web_app, serve_web
from tests.smtp_server import SmtpTestServer
from tests.support_outbox import FrozenClock, add_papers_of
from tests.support_web import links_in
from tests.test_web_flow import send_mail

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "needs headless Chromium: apt-get install chromium chromium-driver",
        allow_module_level=True,
    )
from selenium import webdriver  # noqa: E402  (declared in .[test]: never skipped)
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

NOW = FrozenClock().now
T = TypeVar("T")
PHONE, DESKTOP = 390, 1280


def reference_papers(count: int = 60) -> list[Paper]:
    """Real titles and abstracts (tests/data/papers.jsonl), as arXiv listings of today."""
    rows = Path(__file__).parent / "data" / "papers.jsonl"
    papers = []
    for number, line in enumerate(rows.read_text().splitlines()[:count]):
        row = json.loads(line)
        key = f"2611.{10000 + number}"
        papers.append(
            Paper(
                key=key,
                title=row["title"],
                abstract=row["abstract"],
                authors=("A. Author", "B. Author"),
                categories=("cs.LG",),
                published=NOW - timedelta(hours=number % 48),
                links=Links(abs=f"https://arxiv.org/abs/{key}"),
                sources=("arxiv",),
            )
        )
    return papers


def browser(user_data: Path, *, javascript: bool) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={user_data}",
        f"--window-size={DESKTOP},900",
    ):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    return webdriver.Chrome(options=options, service=service)


@dataclass
class World:
    base: str
    service: Paperbell
    smtp: SmtpTestServer
    clock: FrozenClock
    driver: WebDriver

    async def run(self, step: Callable[..., T], *args: Any) -> T:
        """Drive the browser off the loop, so the server on the loop can answer it."""
        return await asyncio.to_thread(step, *args)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def user_data(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "chromium-profile"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def open_world(
    tmp_path: Path, store: Store, user_data: Path, *, javascript: bool
) -> AsyncIterator[World]:
    clock = FrozenClock(NOW)
    service = await build_service(load_settings(data_dir=tmp_path), store, clock)
    await add_papers_of(store, reference_papers(), now=NOW)
    driver = await asyncio.to_thread(browser, user_data, javascript=javascript)
    try:
        async with (
            SmtpTestServer() as smtp,
            serve_web(build_web_app(service), "127.0.0.1", 0) as (host, port),
        ):
            yield World(f"http://{host}:{port}", service, smtp, clock, driver)
    finally:
        await asyncio.to_thread(driver.quit)


# --- what the browser does (each runs in a thread) -----------------------------------------


def fill_signup(driver: WebDriver, base: str, address: str, query: str) -> None:
    driver.get(base + "/")
    driver.find_element(By.ID, "email").send_keys(address)
    driver.find_element(By.ID, "query").send_keys(query)
    driver.find_element(By.CSS_SELECTOR, 'input[name="deliver"][value="both"]').click()
    hour = driver.find_element(By.ID, "hour")
    hour.clear()
    hour.send_keys("7")


def navigate(driver: WebDriver, button: WebElement) -> None:
    """Click a button that loads a page, and wait until the new one replaced the old."""
    old = driver.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(driver, 10).until(lambda _: _replaced(old))


def _replaced(old: WebElement) -> bool:
    """True once ``old`` left the document. Mid-navigation Chromium may answer "node does
    not belong to the document" rather than "stale": the old page is gone either way."""
    try:
        return bool(expected_conditions.staleness_of(old)(None))
    except WebDriverException:
        return True


def preview_without_js(driver: WebDriver) -> str:
    navigate(driver, driver.find_element(By.ID, "preview-button"))
    return driver.find_element(By.ID, "preview").text


def preview_live(driver: WebDriver) -> str:
    wait = WebDriverWait(driver, 10)
    wait.until(lambda d: "understood" in d.find_element(By.ID, "preview").text)
    return driver.find_element(By.ID, "preview").text


def submit_signup(driver: WebDriver) -> str:
    navigate(driver, driver.find_element(By.ID, "subscribe-button"))
    return driver.find_element(By.TAG_NAME, "main").text


def confirm(driver: WebDriver, url: str) -> str:
    driver.get(url)
    navigate(driver, driver.find_element(By.CSS_SELECTOR, "main form button"))
    return driver.current_url


def main_text(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "main").text


def edit_first(driver: WebDriver, query: str, live: bool) -> str:
    field = driver.find_element(By.CSS_SELECTOR, "li.sub input[name=query]")
    field.clear()
    field.send_keys(query)
    if live:  # the page previews the edited query as it is typed
        assert "language models" in preview_live(driver)
    save = driver.find_element(By.XPATH, "(//li[@class='sub card']//button[text()='Save'])[1]")
    navigate(driver, save)
    return main_text(driver)


def click(driver: WebDriver, xpath: str) -> str:
    navigate(driver, driver.find_element(By.XPATH, xpath))
    return main_text(driver)


def screenshot(
    driver: WebDriver, url: str, width: int, path: Path, query: str | None = None
) -> None:
    """The whole page at ``width`` CSS pixels (a phone is emulated as one); with
    ``query``, typed into the sign-up form and its live preview shown."""
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.get(url)
    if query:
        driver.find_element(By.ID, "email").send_keys("ada@example.org")
        driver.find_element(By.ID, "query").send_keys(query)
        preview_live(driver)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    metrics["height"] = min(height, 6000)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.save_screenshot(str(path))


# --- the tests ---------------------------------------------------------------------------------


async def full_flow(world: World, *, javascript: bool) -> str:
    driver, base = world.driver, world.base
    await world.run(fill_signup, driver, base, "ada@example.org", "diffusion")
    if javascript:
        assert "How paperbell understood it" in await world.run(preview_live, driver)
        zone = await world.run(
            driver.execute_script, "return Intl.DateTimeFormat().resolvedOptions().timeZone"
        )
        value = await world.run(
            driver.execute_script, "return document.getElementById('timezone').value"
        )
        assert value == zone
    else:
        shown = await world.run(preview_without_js, driver)
        assert "How paperbell understood it" in shown and "papers of the last 7 days" in shown
    answer = await world.run(submit_signup, driver)
    assert "We received your request for ada@example.org" in answer

    [mail] = await send_mail(world.service, world.smtp, world.clock)
    [confirm_path] = links_in(mail, "confirm")
    landed = await world.run(confirm, driver, base + confirm_path)
    assert "/manage/" in landed
    page = await world.run(main_text, driver)
    assert "Your address is confirmed" in page and "diffusion" in page

    page = await world.run(edit_first, driver, '"language models"', javascript)
    assert "Query saved." in page and '"language models"' in page
    page = await world.run(
        click,
        driver,
        "//button[starts-with(normalize-space(.), 'Pause') and contains(., 'subscription')]",
    )
    assert "Subscription paused" in page and "Resume" in page
    [sub] = await world.service.store.list_subscriptions()
    assert sub.paused and sub.normalized == '"language models"'
    manage_url = landed.split("?")[0]
    page = await world.run(click, driver, "//button[text()='Unsubscribe from everything']")
    assert "unsubscribed from everything" in page
    user = await world.service.store.find_user(email="ada@example.org")
    assert user is not None and user.email_suppressed
    return manage_url


@pytest.mark.slow
@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
async def test_the_whole_flow_in_chromium(
    tmp_path: Path, store: Store, user_data: Path, javascript: bool
) -> None:
    async for world in open_world(tmp_path, store, user_data, javascript=javascript):
        errors_before = await world.run(world.driver.get_log, "browser") if javascript else []
        await full_flow(world, javascript=javascript)
        if javascript:  # no CSP violation or script error on the way
            logs = await world.run(world.driver.get_log, "browser")
            assert [e for e in logs if e["level"] == "SEVERE"] == [], errors_before + logs


@pytest.mark.slow
async def test_screenshots_at_phone_and_desktop_width(
    tmp_path: Path, store: Store, user_data: Path, shots: Path
) -> None:
    target = shots
    async for world in open_world(tmp_path, store, user_data, javascript=True):
        service = world.service
        user = await service.store.get_or_create_user(email="ada@example.org", now=NOW)
        await service.confirm_by_operator("ada@example.org")
        for query, modes in (("diffusion", "instant"), ('"language models" -survey', "both")):
            await service.subscribe(user.owner, query, DELIVER_CHOICES[modes])
        await match_cycle(service.index, service.store, NOW, plan_matches)
        await send_mail(service, world.smtp, world.clock)  # fills "papers you were sent"
        manage = service.links.manage_url(user, NOW).split("/manage/", 1)[1]
        for width, name in ((PHONE, "phone"), (DESKTOP, "desktop")):
            front = target / f"web-front-{name}.png"
            await world.run(screenshot, world.driver, world.base + "/", width, front, "diffusion")
            await world.run(
                screenshot,
                world.driver,
                f"{world.base}/manage/{manage}",
                width,
                target / f"web-manage-{name}.png",
            )
    check_pngs(target)


def check_pngs(target: Path) -> None:
    for name in ("front", "manage"):
        for width in ("phone", "desktop"):
            shot = target / f"web-{name}-{width}.png"
            assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
