"""The scenario of issue 12 on the whole stack (ledger, balance, notify, web, a real SMTP sink, Chromium):
an alert about a member appears on her own dashboard and in her mailbox, not in the mailbox of one who
turned those emails off, and a pause clears it without an email to anyone."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, expect

from devstack.mail_sink import MailSink
from tests.support.services import wait_for, worker
from tests.support.stack import PASSWORD, TOKEN, Stack, running_stack

pytestmark = [pytest.mark.browser, pytest.mark.kafka]


@pytest.fixture(scope="module")
def scene(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, MailSink, str]]:
    work = tmp_path_factory.mktemp("scenario")
    with running_stack(kafka_bootstrap, work) as stack, MailSink(work / "mail") as sink:
        notify_db = f"sqlite:///{work}/notify.db"
        env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": stack.prefix, "LEDGER_URL": stack.ledger.url,
               "LEDGER_TOKEN": TOKEN, "DATABASE_URL": notify_db, "SMTP_PORT": str(sink.port),
               "NOTIFY_POLL_S": "0.2", "WEB_BASE_URL": "http://web.example", "LOG_LEVEL": "INFO"}
        with worker("reciprocity.notify.worker", "sender", env=env, log_dir=work, startup_timeout_s=120):
            yield stack, sink, notify_db


def mail_to(sink: MailSink, address: str) -> list[str]:
    return [str(m["Subject"]) for m in sink.messages() if m["X-RcptTo"] == address]


def test_her_alert_on_her_dashboard_and_in_her_mailbox_and_a_pause_tells_nobody(
        scene: tuple[Stack, MailSink, str], browser: Browser) -> None:
    stack, sink, notify_db = scene
    uid = uuid.uuid4().hex[:6]
    circle = f"meadow-{uid}"
    stack.circle(circle, f"Meadow {uid}")
    erin, omar, pia, lena = (f"{n}-{uid}" for n in ("erin", "omar", "pia", "lena"))
    for member_id, name in ((erin, "Erin Walsh"), (omar, "Omar Diaz"), (pia, "Pia Lund"), (lena, "Lena Vogel")):
        stack.member(member_id, name, [circle])
    stack.wait_for_directory([erin, omar, pia, lena])
    stack.command("PUT", f"/v1/circles/{circle}/leads", {"leads": [lena]})
    stack.wait_for_leads(circle, [lena])
    stack.command("PUT", f"/v1/members/{pia}/notifications", {"own_alert_emails": False, "daily_digest": False})

    day = (date.today() - timedelta(days=1)).isoformat()
    for giver, receiver in ((erin, omar), (pia, omar)):  # 5 h given, nothing received: over-extended
        stack.command("POST", "/v1/exchanges", {"giver": giver, "receiver": receiver, "kind": "mentoring",
                                                "minutes": 300, "occurred_on": day, "recorded_by": giver})
    wait_for(lambda: len(mail_to(sink, f"{lena}@example.org")) >= 2, 120, interval_s=0.5,
             what="the lead's two heads-ups")
    mine = wait_for(lambda: mail_to(sink, f"{erin}@example.org"), 60, interval_s=0.5, what="Erin's own email")
    assert mine == ["A note of care: your circle's leads were asked to check in with you"]
    assert mail_to(sink, f"{pia}@example.org") == []  # she turned those emails off

    page = browser.new_context(base_url=stack.url, viewport={"width": 1200, "height": 900}).new_page()
    page.goto("/signin")
    page.fill("#member_id", erin)
    page.fill("#password", PASSWORD)
    page.click("#signin-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))
    about = page.locator("#about-me")
    expect(about).to_contain_text("You may be carrying a lot")
    expect(about).to_contain_text("you gave 5 h")

    page.goto("/capacity")
    with page.expect_navigation():
        page.click("#pause-form button[type=submit]")
    engine = sa.create_engine(notify_db)

    def cleared_without_mail() -> bool:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, reason FROM notify_alerts WHERE member_id = :m AND "
                                        "type = 'SignalCleared'"), {"m": erin}).all()
        return bool(rows) and all(r.status == "nothing_to_send" and "pause" in (r.reason or "") for r in rows)

    wait_for(cleared_without_mail, 120, interval_s=0.5, what="the pause to clear Erin's signal, unmailed")
    with engine.connect() as conn:
        told = conn.execute(sa.text("SELECT COUNT(*) FROM notify_deliveries WHERE member_id = :m AND kind = "
                                    "'cleared'"), {"m": erin}).scalar()
    engine.dispose()
    assert told == 0 and not any("All clear" in s for s in mail_to(sink, f"{lena}@example.org"))

    def gone() -> bool:
        page.goto("/")
        return page.locator("#about-me").count() == 0

    wait_for(gone, 60, interval_s=0.5, what="the dashboard to drop the cleared signal")
