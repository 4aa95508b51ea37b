"""Every page at a phone's width (390 px) and a desktop's (1280 px): screenshots for people to look at
(docs/screenshots/, shown in the README), and a failure when any page scrolls sideways on the phone.

The pages are reached as the people who use them: a plain member, a circle's lead and an operator,
on one small circle with a few weeks of exchanges, so every picture has something in it."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.stack import PASSWORD, Stack

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTHS = {"phone": 390, "desktop": 1280}
SETTLE_MS = 30_000


def _sign_in(browser: Browser, stack: Stack, member_id: str, width: int) -> Page:
    page = browser.new_context(base_url=stack.url, viewport={"width": width, "height": 844 if width < 500 else 900},
                               device_scale_factor=1).new_page()
    page.goto("/signin")
    page.fill("#member_id", member_id)
    page.fill("#password", PASSWORD)
    page.click("#signin-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))
    return page


def _overflow(page: Page) -> int:
    """How many pixels the page is wider than the screen (0: no sideways scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def _latest_week_in_view(page: Page) -> bool:
    """The chart's last week label is inside its (possibly scrolling) box, as the page opens."""
    return bool(page.evaluate("""() => {
        const box = document.querySelector('.chart-scroll');
        const labels = box ? box.querySelectorAll('text.week-label') : [];
        if (!labels.length) return false;
        const b = box.getBoundingClientRect(), l = labels[labels.length - 1].getBoundingClientRect();
        return l.left >= b.left - 1 && l.right <= b.right + 1;
    }"""))


def _organisation(stack: Stack) -> dict[str, str]:
    uid = uuid.uuid4().hex[:6]
    circle = f"orchard-{uid}"
    stack.circle(circle, "Orchard circle")
    people = {}
    for name in ("Amara Okafor", "Lukas Brandt", "Priya Raman", "Noor Haddad", "Jonas Weber", "Erin Walsh"):
        member_id = f"{name.split()[0].lower()}-{uid}"
        stack.member(member_id, name, [circle])
        people[name.split()[0].lower()] = member_id
    operator = f"olu-{uid}"
    stack.member(operator, "Olu Operator", [], role="operator")
    stack.wait_for_directory([*people.values(), operator])
    stack.command("PUT", f"/v1/circles/{circle}/leads", {"leads": [people["priya"]]})
    stack.wait_for_leads(circle, [people["priya"]])
    plan = [("amara", "lukas", "mentoring", 90, 2), ("lukas", "amara", "feedback", 30, 3),
            ("amara", "noor", "help", 120, 5), ("noor", "jonas", "care", 60, 8),
            ("jonas", "amara", "knowledge", 45, 10),
            ("priya", "lukas", "feedback", 40, 12), ("erin", "noor", "resource", 25, 16),
            ("amara", "erin", "mentoring", 75, 20), ("lukas", "jonas", "help", 50, 24)]
    for giver, receiver, kind, minutes, days in plan:
        day = (date.today() - timedelta(days=days)).isoformat()
        made = stack.command("POST", "/v1/exchanges", {
            "giver": people[giver], "receiver": people[receiver], "kind": kind, "minutes": minutes,
            "note": f"{kind} on the orchard plan", "occurred_on": day, "recorded_by": people[giver], "shared": True})
        stack.command("POST", f"/v1/exchanges/{made['id']}/acknowledge",
                      {"by": people[receiver], "thanks": "Thank you, that helped a lot.", "shared": True})
    waiting = stack.command("POST", "/v1/exchanges", {
        "giver": people["lukas"], "receiver": people["amara"], "kind": "help", "minutes": 20,
        "note": "Carried the ladders", "occurred_on": date.today().isoformat(), "recorded_by": people["lukas"]})
    return {**people, "circle": circle, "operator": operator, "waiting": str(waiting["id"])}


def test_every_page_fits_a_phone_and_is_pictured(stack: Stack, browser: Browser) -> None:
    org = _organisation(stack)
    DOCS.mkdir(parents=True, exist_ok=True)
    who_sees_what = {
        org["amara"]: [("member-dashboard", "/"), ("member-record", "/exchanges/new"),
                       ("member-exchange", f"/exchanges/{org['waiting']}"), ("member-history", "/exchanges"),
                       ("member-people", "/people"), ("member-capacity", "/capacity"), ("member-circles", "/circles"),
                       ("member-circle", f"/circles/{org['circle']}"), ("member-wall", "/wall")],
        org["priya"]: [("lead-circle", f"/circles/{org['circle']}"), ("lead-member", f"/members/{org['amara']}")],
        org["operator"]: [("operator-ops", "/ops")],
    }
    wide: list[str] = []
    for label, width in WIDTHS.items():
        for member_id, pages in who_sees_what.items():
            page = _sign_in(browser, stack, member_id, width)
            for name, url in pages:
                page.goto(url)
                if name == "member-dashboard":  # the numbers have caught up with the exchanges
                    expect(page.locator("#given-total")).not_to_have_attribute("data-minutes", "0",
                                                                               timeout=SETTLE_MS)
                    page.reload()  # the chart is drawn with the page, not polled
                    assert _latest_week_in_view(page), f"the chart opens away from the latest week at {width} px"
                if name == "lead-circle":
                    expect(page.locator("#flow-graph")).to_be_visible(timeout=SETTLE_MS)
                if name == "member-wall":
                    expect(page.locator("#wall article").first).to_be_visible(timeout=SETTLE_MS)
                page.wait_for_load_state("networkidle")
                if width < 500 and (extra := _overflow(page)) > 0:
                    wide.append(f"{url} ({name}) is {extra} px wider than a {width} px phone")
                page.screenshot(path=str(DOCS / f"{name}-{label}.png"), full_page=True)
            page.context.close()
    page = browser.new_context(base_url=stack.url, viewport={"width": 390, "height": 844}).new_page()
    page.goto("/signin")
    if _overflow(page) > 0:
        wide.append("/signin is wider than a phone")
    page.screenshot(path=str(DOCS / "signin-phone.png"), full_page=True)
    page.context.close()
    assert not wide, "pages scroll sideways on a phone:\n" + "\n".join(wide)
