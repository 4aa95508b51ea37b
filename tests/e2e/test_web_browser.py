"""What members, leads and operators see in a real browser, against the whole real stack.

Each test registers its own people (unique ids) on the module's stack, so tests do not depend on
each other's data. Waits are for conditions on the page (htmx polls keep the numbers fresh); the
read side is eventually consistent, so a number may take a moment to change.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.stack import PASSWORD, Stack

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

SETTLE_MS = 30_000  # the read side catching up: seconds at most, usually well under one


def sign_in(browser: Browser, stack: Stack, member_id: str, **context: object) -> Page:
    page = browser.new_context(base_url=stack.url, viewport={"width": 1200, "height": 900}, **context).new_page()
    page.goto("/signin")
    page.fill("#member_id", member_id)
    page.fill("#password", PASSWORD)
    page.click("#signin-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))
    return page


def shot(page: Page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def people(stack: Stack, *names: str, circle_size: int = 0) -> tuple[str, list[str]]:
    """A fresh circle with these people in it (ids are the lower-cased first names plus a suffix)."""
    uid = uuid.uuid4().hex[:6]
    circle = f"garden-{uid}"
    stack.circle(circle, f"Garden {uid}")
    ids = []
    for name in names:
        member_id = f"{name.split()[0].lower()}-{uid}"
        stack.member(member_id, name, [circle])
        ids.append(member_id)
    stack.wait_for_directory(ids)
    return circle, ids


def record_and_acknowledge(stack: Stack, giver: str, receiver: str, kind: str, minutes: int, days_ago: int = 1,
                           thanks: str = "") -> str:
    day = (date.today() - timedelta(days=days_ago)).isoformat()
    recorded = stack.command("POST", "/v1/exchanges", {
        "giver": giver, "receiver": receiver, "kind": kind, "minutes": minutes, "note": f"{kind} together",
        "occurred_on": day, "recorded_by": giver, "shared": True})
    stack.command("POST", f"/v1/exchanges/{recorded['id']}/acknowledge", {"by": receiver, "thanks": thanks,
                                                                          "shared": True})
    return str(recorded["id"])


def test_record_acknowledge_and_see_the_totals_change(stack: Stack, browser: Browser, shots: Path) -> None:
    _, (ada, ben) = people(stack, "Ada Lovelace", "Ben Okafor")

    page = sign_in(browser, stack, ada)
    expect(page.locator("h1")).to_have_text("Hello, Ada Lovelace")
    expect(page.locator("#given-total")).to_have_attribute("data-minutes", "0")
    shot(page, shots, "e2e-01-dashboard-empty")

    page.click("nav >> text=Record")
    page.click("#other")
    page.keyboard.type("Ben")
    # The autocomplete is a <datalist> filled by htmx from /members/search.
    expect(page.locator(f'#member-options option[value="{ben}"]')).to_have_count(1)
    page.fill("#other", ben)
    page.select_option("#kind", "mentoring")
    page.fill("#minutes", "90")
    page.fill("#note", "Pairing on the planting plan")
    page.check("#exchange-form input[name=shared]")
    shot(page, shots, "e2e-02-record-form")
    page.click("#exchange-form button[type=submit]")

    card = page.locator("#exchange-card")
    expect(card.locator("h1")).to_have_text("You gave Ben Okafor 1 h 30 min of mentoring", timeout=SETTLE_MS)
    expect(page.locator("#exchange-status")).to_contain_text("waiting for Ben Okafor")
    expect(page.locator("#withdraw-form")).to_be_visible()
    shot(page, shots, "e2e-03-recorded")

    other = sign_in(browser, stack, ben)
    pending = other.locator("#pending-list")
    expect(pending).to_contain_text("Ada Lovelace gave you 1 h 30 min of mentoring", timeout=SETTLE_MS)
    expect(other.locator("#received-total")).to_have_attribute("data-minutes", "0")
    expect(other.locator("#received-total")).to_have_attribute("data-pending-minutes", "90")
    shot(other, shots, "e2e-04-pending-for-ben")

    pending.locator("a").first.click()
    expect(other.locator("#acknowledge-form")).to_be_visible()
    expect(other.locator("#exchange-note")).to_have_text("Pairing on the planting plan")
    other.fill("#thanks", "Thank you, Ada!")
    other.check("#acknowledge-form input[name=shared]")
    shot(other, shots, "e2e-05-acknowledge")
    other.click("#acknowledge-form button[type=submit]")
    expect(other.locator("#exchange-card")).to_have_attribute("data-status", "acknowledged", timeout=SETTLE_MS)
    expect(other.locator("#exchange-thanks")).to_have_text("Thank you, Ada!")
    expect(other.locator("#acknowledge-form")).to_have_count(0)
    shot(other, shots, "e2e-06-acknowledged")

    other.goto("/")
    # The numbers region refreshes itself every few seconds; no reload needed.
    expect(other.locator("#received-total")).to_have_attribute("data-minutes", "90", timeout=SETTLE_MS)
    expect(other.locator("#pending-empty")).to_be_visible(timeout=SETTLE_MS)
    shot(other, shots, "e2e-07-ben-dashboard-after")

    page.goto("/")
    expect(page.locator("#given-total")).to_have_attribute("data-minutes", "90", timeout=SETTLE_MS)
    expect(page.locator("#given-total")).to_contain_text("1 h 30 min")
    shot(page, shots, "e2e-08-ada-dashboard-after")

    page.goto("/people")
    row = page.locator(f"#person-{ben}")
    expect(row.locator("td.given")).to_have_attribute("data-minutes", "90", timeout=SETTLE_MS)
    expect(row.locator("td.received")).to_have_attribute("data-minutes", "0")
    shot(page, shots, "e2e-09-people")

    page.goto("/wall")
    expect(page.locator("#wall")).to_contain_text("Thank you, Ada!")
    shot(page, shots, "e2e-10-wall")


def test_form_errors_show_inline_and_nothing_is_recorded(stack: Stack, browser: Browser, shots: Path) -> None:
    _, (chen,) = people(stack, "Chen Wei")
    page = sign_in(browser, stack, chen)
    page.goto("/exchanges/new")
    page.fill("#minutes", "0")
    page.keyboard.press("Tab")  # blur: htmx asks the server about this one field
    expect(page.locator("#minutes-error")).to_have_text("Minutes go from 1 to 1440 (a whole day).")
    page.fill("#other", "nobody-at-all")
    page.keyboard.press("Tab")
    expect(page.locator("#other-error")).to_contain_text("There is no member with the id")
    page.click("#exchange-form button[type=submit]")
    expect(page.locator("#form-error")).to_be_visible()
    expect(page.locator("#kind-error")).to_have_text("Choose what kind of exchange it was.")
    expect(page.locator("#minutes")).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(r"/exchanges/new$"))
    shot(page, shots, "e2e-11-form-errors")
    assert stack.balance_json(f"/v1/members/{chen}/exchanges")["exchanges"] == []


def test_people_page_refreshes_itself(stack: Stack, browser: Browser, shots: Path) -> None:
    """The page of issue 2: members with given/received totals, refreshed by htmx every 5 s."""
    _, (dara, omar) = people(stack, "Dara Nolan", "Omar Haddad")
    page = sign_in(browser, stack, dara)
    page.goto("/people")
    expect(page.locator("#people-empty")).to_be_visible()
    record_and_acknowledge(stack, dara, omar, "care", 45)
    record_and_acknowledge(stack, omar, dara, "feedback", 20)
    row = page.locator(f"#person-{omar}")  # no reload: the poll brings it in
    expect(row.locator("td.given")).to_have_attribute("data-minutes", "45", timeout=SETTLE_MS)
    expect(row.locator("td.received")).to_have_attribute("data-minutes", "20", timeout=SETTLE_MS)
    expect(row).to_contain_text("Omar Haddad")
    shot(page, shots, "e2e-12-people-refreshed")


def test_leads_members_and_operators_see_what_is_theirs(stack: Stack, browser: Browser, shots: Path) -> None:
    circle, ids = people(stack, "Ada Lovelace", "Ben Okafor", "Chen Wei", "Dara Nolan", "Lena Vogel")
    ada, ben, chen, dara, lena = ids
    stack.command("PUT", f"/v1/circles/{circle}/leads", {"leads": [lena]})
    stack.wait_for_leads(circle, [lena])
    for giver, receiver, kind, minutes, days in [(ada, ben, "mentoring", 120, 2), (ben, ada, "feedback", 30, 3),
                                                 (ada, chen, "help", 90, 5), (chen, dara, "care", 60, 8),
                                                 (dara, ada, "knowledge", 45, 10), (lena, ben, "feedback", 40, 12)]:
        record_and_acknowledge(stack, giver, receiver, kind, minutes, days, thanks="Thanks!")
    uid = circle.rsplit("-", 1)[1]
    operator = f"ops-{uid}"
    stack.member(operator, "Olu Operator", [], role="operator")
    stack.wait_for_directory([operator])

    lead = sign_in(browser, stack, lena)
    lead.goto(f"/circles/{circle}")
    # Balance projects in order; wait until all six flows are in the picture.
    expect(lead.locator("#flow-graph path.flow")).to_have_count(6, timeout=SETTLE_MS)
    expect(lead.locator("#participation")).to_be_visible()
    expect(lead.locator("#alerts")).to_be_visible()
    expect(lead.locator("#circle-members")).to_contain_text("Ada Lovelace")
    # A lead sees the amounts between people, every flow listed by name (never largest first).
    lead.click("#flows summary")
    rows = lead.locator("#flow-table tbody tr")
    expect(rows).to_have_count(6)
    froms = [rows.nth(i).locator("td").nth(0).inner_text() for i in range(6)]
    assert froms == sorted(froms, key=str.lower) and froms[0] == "Ada Lovelace"
    expect(rows.filter(has_text="Ben Okafor").filter(has_text="2 h")).to_have_count(1)  # Ada gave Ben 120 min
    shot(lead, shots, "e2e-13-circle-for-lead")
    lead.click("#circle-members >> text=Ada Lovelace")
    expect(lead).to_have_url(re.compile(f"/members/{ada}$"))
    expect(lead.locator("#given-total")).to_have_attribute("data-minutes", "210")
    shot(lead, shots, "e2e-14-member-page-for-lead")

    member = sign_in(browser, stack, ben)
    member.goto(f"/members/{ada}")
    expect(member.locator("h1")).to_have_text("This page is private")
    expect(member.locator("main")).to_contain_text("for them and for the leads of their circles")
    shot(member, shots, "e2e-15-member-page-refused")
    member.goto(f"/circles/{circle}")
    # A plain member sees who is connected with whom: five pairs, every line alike, no amounts, no table.
    expect(member.locator("#flow-graph")).to_be_visible()
    expect(member.locator("#flow-graph path.tie")).to_have_count(5)
    expect(member.locator("#flow-graph path.flow")).to_have_count(0)
    expect(member.locator("#flow-table")).to_have_count(0)
    flows_text = member.locator("#flows").inner_text() + member.locator("#flow-graph").inner_html()
    assert not re.search(r"\d+ (min|h)\b", flows_text), flows_text
    expect(member.locator("#connection-list li").first).to_contain_text("Ada Lovelace")
    expect(member.locator("#alerts")).to_have_count(0)
    shot(member, shots, "e2e-15b-circle-for-member")
    member.goto("/ops")
    expect(member.locator("h1")).to_have_text("This page is private")

    ops = sign_in(browser, stack, operator)
    ops.click("nav >> text=Operations")
    expect(ops.locator("#projection-table tbody tr").first).to_be_visible()
    expect(ops.locator("#projection-summary")).to_have_attribute("data-healthy", "true")
    expect(ops.locator("#service-health [data-service=notify]")).to_have_attribute("data-ok", "false")
    expect(ops.locator("#no-dead-letters")).to_have_text("No dead letters.")  # read from the real DLQs
    expect(ops.locator("#dead-letter-counts [data-topic='ledger.exchanges.dlq']")).to_have_attribute("data-count", "0")
    shot(ops, shots, "e2e-16-operations")
    ops.goto(f"/members/{ada}")
    expect(ops.locator("h1")).to_have_text("This page is private")


def test_capacity_and_pause(stack: Stack, browser: Browser, shots: Path) -> None:
    _, (kim,) = people(stack, "Kim Tanaka")
    page = sign_in(browser, stack, kim)
    page.click("nav >> text=Capacity")
    page.fill("#weekly_hours", "6")
    page.click("#capacity-form button[type=submit]")
    expect(page.locator(".notice.success")).to_contain_text("Your weekly capacity is saved")

    def declared() -> bool:
        page.goto("/capacity")
        return "6 h" in page.locator("#capacity-now").inner_text()

    _until(declared)
    back = date.today() + timedelta(days=10)
    page.fill("#paused_until", back.isoformat())
    with page.expect_navigation():  # the form posts and redirects; polling before it lands races it
        page.click("#pause-form button[type=submit]")

    def paused() -> bool:
        page.goto("/capacity")
        return page.locator("#resume-form").count() == 1

    _until(paused)
    expect(page.locator("#pause-now")).to_contain_text("You are paused until")
    shot(page, shots, "e2e-17-capacity-paused")
    page.goto("/")
    expect(page.locator("#prompts")).to_contain_text("You are paused until")
    page.goto("/capacity")
    page.click("#resume-form button[type=submit]")
    expect(page.locator(".notice.success")).to_contain_text("Welcome back")


def test_reading_works_without_javascript(stack: Stack, browser: Browser, shots: Path) -> None:
    _, (ria, sam) = people(stack, "Ria Sen", "Sam Ortiz")
    record_and_acknowledge(stack, ria, sam, "knowledge", 75, thanks="Merci")
    page = sign_in(browser, stack, ria, java_script_enabled=False)

    def shows_given() -> bool:
        page.reload()
        return page.locator("#given-total").get_attribute("data-minutes") == "75"

    _until(shows_given)
    expect(page.locator("#recent-list")).to_contain_text("You gave Sam Ortiz 1 h 15 min of knowledge")
    page.goto("/people")
    expect(page.locator(f"#person-{sam} td.given")).to_have_attribute("data-minutes", "75")
    # Even recording works as a plain form post.
    page.goto("/exchanges/new")
    page.fill("#other", sam)
    page.select_option("#kind", "help")
    page.fill("#minutes", "15")
    page.click("#exchange-form button[type=submit]")
    expect(page.locator(".notice.success")).to_contain_text("Recorded")
    shot(page, shots, "e2e-18-no-javascript")


def _until(condition, timeout_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    from tests.support.services import wait_for

    wait_for(condition, timeout_s, interval_s=0.5, what="the page to show the change")


def test_a_correction_goes_through_ledger_and_balance_to_both_pages(stack: Stack, browser: Browser,
                                                                      shots: Path) -> None:
    _, (ivy, jon) = people(stack, "Ivy Chen", "Jon Berg")
    day = (date.today() - timedelta(days=1)).isoformat()
    recorded = stack.command("POST", "/v1/exchanges", {
        "giver": ivy, "receiver": jon, "kind": "mentoring", "minutes": 45, "note": "pairing",
        "occurred_on": day, "recorded_by": ivy})
    xid = recorded["id"]
    page = sign_in(browser, stack, ivy)
    page.goto(f"/exchanges/{xid}")
    expect(page.locator("#exchange-card")).to_have_attribute("data-status", "recorded", timeout=SETTLE_MS)
    page.click("#correct summary")
    page.select_option("#correct-kind", "feedback")
    page.fill("#correct-minutes", "70")
    page.click("#correct-form button[type=submit]")
    expect(page.locator(".notice.success")).to_contain_text("Corrected")

    def corrected() -> bool:
        page.goto(f"/exchanges/{xid}")
        return page.locator("#exchange-corrected").count() == 1

    _until(corrected)
    page.goto("/")
    expect(page.locator("#given-total")).to_contain_text("1 h 10 min", timeout=SETTLE_MS)  # pending, corrected
    other = sign_in(browser, stack, jon)
    other.goto(f"/exchanges/{xid}")
    changed = other.locator("#exchange-corrected")
    expect(changed).to_contain_text("Ivy Chen corrected this")
    expect(changed).to_contain_text("Mentoring, 45 min")
    expect(other.locator("#correct-form")).to_have_count(0)
    shot(other, shots, "e2e-19-corrected-seen-by-the-other-party")
