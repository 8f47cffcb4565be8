"""The board in Debian's chromium (Playwright drives it; no browser is downloaded), against a
real collector fed by a real MQTT broker, delivering to a loopback desk receiver.

The one timed check is the acceptance's own: a new fault is on the board within 2 seconds of
its MQTT message. Screenshots of the board, device and ticket pages go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from collector.service.tickets import load_tickets
from collector.store.api_store import create_token
from tests.support.collector import (
    Publisher,
    eventually,
    make_config,
    running,
    telemetry,
    tickets_config,
)
from tests.support.mosquitto import Broker
from tests.support.receiver import Receiver
from tests.support.services import free_port
from tests.support.tickets import new_secret

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium is missing: scripts/ensure-system-packages.sh"
)


async def sign_in(browser: Browser, base: str, token: str) -> Page:
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    await page.goto(f"{base}/board/login")
    await page.fill("#token", token)
    await page.press("#token", "Enter")
    await page.wait_for_url(f"{base}/board")
    return page


async def test_fault_on_board_countdown_ack_and_viewer(tmp_path: Path, broker: Broker) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    receiver = Receiver(free_port())
    receiver.start()
    http_port = free_port()
    cfg = make_config(tmp_path, tickets_config(tmp_path, broker, receiver, 2, http_port))
    env = {
        "DESK_OUT_SECRET": new_secret(),
        "DESK_IN_SECRET": new_secret(),
        "DESK_SINK_SECRET": new_secret(),
    }
    pub = Publisher(broker)
    base = f"http://127.0.0.1:{http_port}"
    try:
        async with running(cfg, tickets=load_tickets(cfg, env)) as service, async_playwright() as p:
            operator = create_token(service.store.engine, "operator", None, "noc-1")[0]
            viewer = create_token(service.store.engine, "viewer", None, "wall")[0]
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await sign_in(browser, base, operator)
            await page.wait_for_selector("#live.on")  # subscribed to the event stream
            assert await page.locator("tbody tr[data-number]").count() == 0

            # a fault by a real MQTT message: on the board within 2 seconds
            for seq, metrics in enumerate(({"cpu_pct": 3.0}, {"disk_used_pct": 97.0}), 1):
                await asyncio.to_thread(
                    pub.publish, "fleet/v1/acme/gw-0/telemetry", telemetry("gw-0", seq, **metrics)
                )
            await page.wait_for_selector("tbody tr[data-number]", timeout=2000)
            row = page.locator("tbody tr[data-number]").first
            number = await row.get_attribute("data-number")
            assert number and "disk_full" in await row.inner_text()
            assert "sla-ok" in (await row.get_attribute("class") or "")

            # its countdown moves
            countdown = row.locator("td.left .countdown")
            first = await countdown.inner_text()
            await page.wait_for_function(
                "([el, was]) => el.textContent !== was",
                arg=[await countdown.element_handle(), first],
            )
            assert await countdown.inner_text() < first  # hh:mm:ss counts down
            await page.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)

            # the ticket page; the operator's acknowledge stops the response clock
            await row.locator("a", has_text=number).click()
            await page.wait_for_url(f"{base}/board/tickets/{number}")
            response = page.locator("tr[data-target=response]")
            assert await response.locator(".countdown").count() == 1
            await page.fill("#reason", "engineer on the phone")
            await page.click("button[data-action=acknowledge]")
            await page.wait_for_selector("tr[data-target=response] td.outcome:has-text('met')")
            assert await response.locator(".countdown").count() == 0
            assert "api:noc-1" in await page.locator(".audit").inner_text()
            await eventually(
                lambda: (
                    [json.loads(r.body)["type"] for r in receiver.accepted()]
                    == ["ticket_opened", "acknowledged"]
                )
            )
            acked = json.loads(receiver.accepted()[1].body)
            assert acked["ticket"]["number"] == number
            await page.screenshot(path=str(ARTIFACTS / "ticket.png"), full_page=True)

            await page.goto(f"{base}/board/devices/gw-0")
            assert await page.locator("figure.chart svg polyline").count() >= 1
            await page.screenshot(path=str(ARTIFACTS / "device.png"), full_page=True)
            await page.goto(f"{base}/board/fleet")
            await page.screenshot(path=str(ARTIFACTS / "fleet.png"), full_page=True)

            # a viewer sees no action buttons and the API refuses the viewer's action
            wall = await sign_in(browser, base, viewer)
            await wall.goto(f"{base}/board/tickets/{number}")
            assert await wall.locator("button[data-action]").count() == 0
            status = await wall.evaluate(
                """async (n) => (await fetch('/api/v1/tickets/' + n + '/actions', {
                    method: 'POST', headers: {'Content-Type': 'application/json',
                    'X-Fleetdesk-Board': '1'}, body: JSON.stringify({action: 'resolve'})
                })).status""",
                number,
            )
            assert status == 403
            # keyboard: the skip link and the first row's link are reachable by Tab
            await page.goto(f"{base}/board")
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.className") == "skip"
            await browser.close()
    finally:
        pub.close()
        receiver.stop()
