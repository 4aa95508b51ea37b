"""From signal to email without Kafka: the projection (directory view, outbox, offsets) and the sender,
on a real database (SQLite, and PostgreSQL where it matters) against a real SMTP server (the sink).

Events are fed the way ProjectionConsumer feeds them (partitioned, offsets advancing, one transaction
per batch); the Kafka path itself is covered by test_notify_service.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from reciprocity.common.db import make_engine
from reciprocity.messaging.consumer import StaleBatch
from reciprocity.notify import store
from reciprocity.notify.projection import NotifyProjection
from reciprocity.notify.sender import Sender, SmtpConfig, SmtpTransport

from devstack.mail_sink import MailSink
from tests.support import events as t
from tests.support.auth import authorized
from tests.support.services import wait_for

BASE = "http://web.example"


class Rig:
    """notify's projection and sender on one database, sending to `sink`: one 'process'."""

    def __init__(self, url: str, sink: MailSink, *, crash_hook: Any = None, lease_s: float = 0.3,
                 user: str | None = None, password: str | None = None) -> None:
        self.engine = make_engine(url)
        store.migrate(self.engine)
        smtp = SmtpConfig(port=sink.port, timeout_s=5, user=user, password=password)
        self.sender = Sender(self.engine, SmtpTransport(smtp),
                             retry_initial_s=0.05, retry_max_s=0.2, lease_s=lease_s, poll_s=0.05,
                             crash_hook=crash_hook)
        self.projection = NotifyProjection(self.engine, web_base_url=BASE, on_planned=self.sender.wake,
                                           crash_hook=crash_hook)
        self.feeder = t.Feeder(self.projection)

    def rows(self, **where: str) -> list[dict[str, Any]]:
        query = sa.select(store.deliveries).order_by(store.deliveries.c.alert_id, store.deliveries.c.recipient)
        for column, value in where.items():
            query = query.where(store.deliveries.c[column] == value)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def alert(self, event_id: object) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(store.alerts).where(store.alerts.c.event_id == str(event_id))).one()
        return dict(row._mapping)

    def drain(self, timeout_s: float = 20) -> None:
        """Send until nothing is pending (honouring backoff and leases), or fail after the deadline."""
        def done() -> bool:
            self.sender.send_due()
            return not self.rows(status="pending")

        wait_for(done, timeout_s=timeout_s, interval_s=0.02, what="every pending delivery to be sent")

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def sink(tmp_path: Path):  # type: ignore[no-untyped-def]
    with MailSink(tmp_path / "mail") as running:
        yield running


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/notify.db"


@pytest.fixture
def rig(url: str, sink: MailSink):  # type: ignore[no-untyped-def]
    made = Rig(url, sink)
    yield made
    made.close()


def sent_to(sink: MailSink) -> list[tuple[str, str]]:
    return [(m["X-RcptTo"], str(m["Subject"]).strip()) for m in sink.messages()]


# --- the happy path ----------------------------------------------------------------------------


def test_a_signal_becomes_one_multipart_email_per_lead(rig: Rig, sink: MailSink) -> None:
    signal = t.overextended("ana", ["design"], given=400, received=60)
    env = t.envelope(signal)
    rig.feeder.feed([*t.organisation(), (env, signal)])
    (row,) = rig.rows()
    assert (row["recipient"], row["status"], row["to_address"]) == ("bo", "pending", "bo@example.org")

    rig.drain()
    (message,) = sink.messages()
    assert message["X-RcptTo"] == "bo@example.org"
    assert message["To"] == "Bo Chen <bo@example.org>"
    assert message["From"] == "Reciprocity <alerts@reciprocity.local>"
    assert message["Message-ID"] == f"<{env.event_id}.bo@reciprocity.local>"
    assert "Ana Lima" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "6 h 40 min" in text and "1 h" in text and f"{BASE}/members/ana" in text
    assert f'href="{BASE}/members/ana"' in html
    (row,) = rig.rows()
    assert row["status"] == "sent" and row["sent_at"] is not None and row["attempts"] == 1
    assert rig.alert(env.event_id)["status"] == "planned"


def test_a_lead_of_two_of_the_members_circles_gets_one_email(rig: Rig, sink: MailSink) -> None:
    rig.feeder.feed([*t.organisation(), t.disconnected("cy", ["design", "ops"])])
    rig.drain()
    assert [to for to, _ in sent_to(sink)] == ["bo@example.org"]
    text = sink.messages()[0].get_body(("plain",)).get_content()
    assert "You lead Design and Ops, circles Cy Park belongs to." in " ".join(text.split())


def test_no_email_to_oneself_the_parent_circles_leads_hear_instead(rig: Rig, sink: MailSink) -> None:
    rig.feeder.feed([*t.organisation(), t.overextended("bo", ["design", "ops"])])
    rig.drain()
    # bo leads both: design's parent (studio, zed) hears; ops has no parent and no other lead. bo gets
    # no lead's alert about herself, only her own short note.
    sent = sorted(sent_to(sink))
    assert [to for to, _ in sent] == ["bo@example.org", "zed@example.org"]
    assert sent[0][1].startswith("A note of care") and sent[1][1].startswith("Heads-up")
    to_zed = next(m for m in sink.messages() if m["X-RcptTo"] == "zed@example.org")
    assert "the circle above Design, which Bo Chen leads" in to_zed.get_body(("plain",)).get_content()


def test_the_member_hears_of_her_own_alert_unless_she_turned_it_off(rig: Rig, sink: MailSink) -> None:
    rig.feeder.feed([*t.organisation(), t.own_emails("ana", True), t.overextended("ana", ["design"], given=400,
                                                                                   received=60)])
    rig.drain()
    mine = [m for m in sink.messages() if m["X-RcptTo"] == "ana@example.org"]
    assert len(mine) == 1 and str(mine[0]["Subject"]).startswith("A note of care")
    text = " ".join(mine[0].get_body(("plain",)).get_content().split())
    assert "you gave 6 h 40 min and received 1 h" in text and "Nobody did anything wrong" in text
    assert "Ask how they are" not in text  # the advice is for her leads
    assert "turn them off on your Capacity page: http://web.example/capacity#emails" in text
    # cy turned hers off: her leads hear, she gets nothing, and nothing is recorded as owed to her.
    rig.feeder.feed([t.disconnected("cy", ["design"])])
    rig.drain()
    assert not [m for m in sink.messages() if m["X-RcptTo"] == "cy@example.org"]
    assert rig.rows(recipient="cy") == []


def test_a_repeated_directory_event_is_applied_once(rig: Rig) -> None:
    """A copy re-appended by hand (a redriven dead letter) must not undo what came after its original."""
    first_leads = t.leads("ops", "bo")
    copied = (t.envelope(first_leads), first_leads)
    rig.feeder.feed([*t.organisation()[:-1], copied])
    rig.feeder.feed([t.leads("ops", "cy")])
    rig.feeder.feed([copied])
    with rig.engine.connect() as conn:
        leads = conn.execute(sa.select(store.circle_leads.c.member_id)
                             .where(store.circle_leads.c.circle_id == "ops")).scalars().all()
    assert leads == ["cy"]


def test_nobody_to_tell_is_a_visible_failure_not_silence(rig: Rig, sink: MailSink) -> None:
    signal = t.overextended("solo", ["island"])
    env = t.envelope(signal)
    rig.feeder.feed([t.circle("island"), t.member("solo", ["island"]), t.leads("island", "solo"), (env, signal)])
    # leads may still be on their way (a circle is formed, then given leads): it waits like any gap
    assert rig.alert(env.event_id)["status"] == "waiting"
    assert rig.projection.expire_waiting(max_wait_s=0) == 1
    alert = rig.alert(env.event_id)
    assert alert["status"] == "failed" and "nobody to tell" in alert["reason"]
    with rig.engine.connect() as conn:
        listed = store.list_deliveries(conn, status="failed")
    assert [(d["alert_id"], d["recipient"]) for d in listed] == [(str(env.event_id), None)]


def test_a_paused_lead_is_not_mailed_and_the_skip_is_recorded(rig: Rig, sink: MailSink) -> None:
    rig.feeder.feed([*t.organisation(), t.pause("bo"), t.overextended("ana", ["design"])])
    rig.drain()
    assert [to for to, _ in sent_to(sink)] == ["zed@example.org"]
    (bo,) = rig.rows(recipient="bo")
    assert bo["status"] == "suppressed" and bo["last_error"] == "lead bo is paused"


# --- outbox, offsets, replay -----------------------------------------------------------------


def test_offsets_move_with_the_deliveries_and_a_stale_batch_changes_nothing(rig: Rig) -> None:
    records = rig.feeder.append([*t.organisation(), t.overextended("ana", ["design"])])
    rig.feeder.apply_records(records)
    with rig.engine.connect() as conn:
        offsets = store.stored_offsets(conn)
    assert offsets[("balance.signals", records[-1].partition)] == records[-1].offset + 1
    before = rig.rows()

    with pytest.raises(StaleBatch):
        rig.feeder.apply_records(records)  # the same batch again: another consumer applied it first
    with rig.engine.connect() as conn:
        assert store.stored_offsets(conn) == offsets
    assert rig.rows() == before


def test_a_full_replay_from_offset_zero_sends_nothing_new(rig: Rig, sink: MailSink) -> None:
    raised = t.overextended("ana", ["design"])
    env = t.envelope(raised, occurred_at=t.at(0))
    clear = t.cleared(env, raised)
    rig.feeder.feed([*t.organisation(), (env, raised), t.disconnected("cy", ["design"]),
                     (t.envelope(clear, occurred_at=t.at(2)), clear)])
    rig.drain()
    before_mail, before_rows = sent_to(sink), rig.rows()
    assert len(before_mail) == 3

    with rig.engine.begin() as conn:  # a directory view gone wrong: a rewind rebuilds it
        memberships = conn.execute(sa.select(store.memberships)).all()
        conn.execute(sa.delete(store.memberships))
    assert store.rewind_offsets(rig.engine) > 0
    rig.feeder.replay()
    rig.drain()
    assert sent_to(sink) == before_mail
    assert rig.rows() == before_rows
    with rig.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(store.memberships)).all()) == sorted(memberships)


# --- ordering across topics ------------------------------------------------------------------


def test_a_signal_that_overtakes_the_directory_waits_and_is_sent_when_it_catches_up(rig: Rig, sink: MailSink) -> None:
    raised = t.overextended("ana", ["design"])
    env = t.envelope(raised, occurred_at=t.at(0))
    clear = t.cleared(env, raised)
    clear_env = t.envelope(clear, occurred_at=t.at(1))
    rig.feeder.feed([(env, raised)])
    alert = rig.alert(env.event_id)
    assert alert["status"] == "waiting"
    assert "member ana" in alert["reason"] and "circle design" in alert["reason"]
    rig.feeder.feed([(clear_env, clear)])  # behind its raise, even though it needs no directory itself
    assert rig.alert(clear_env.event_id)["status"] == "waiting"

    rig.feeder.feed(t.organisation()[:6])  # circles and some members; bo's lead role not known yet
    assert rig.alert(env.event_id)["status"] == "waiting"
    rig.feeder.feed(t.organisation()[6:])
    assert rig.alert(env.event_id)["status"] == "planned"
    assert rig.alert(clear_env.event_id)["status"] == "planned"
    rig.drain()
    assert [s.split(":")[0] for _, s in sent_to(sink)] == ["Heads-up", "All clear"]


def test_a_signal_whose_directory_never_comes_is_recorded_as_failed(rig: Rig) -> None:
    signal = t.overextended("ghost", ["nowhere"])
    env = t.envelope(signal)
    rig.feeder.feed([(env, signal)])
    assert rig.projection.expire_waiting(max_wait_s=3600) == 0  # not yet
    assert rig.projection.expire_waiting(max_wait_s=0) == 1
    alert = rig.alert(env.event_id)
    assert alert["status"] == "failed"
    assert "did not catch up" in alert["reason"] and "member ghost" in alert["reason"]
    with rig.engine.connect() as conn:
        assert [d["alert_id"] for d in store.list_deliveries(conn, status="failed")] == [str(env.event_id)]


# --- rate limit --------------------------------------------------------------------------------


def test_a_lead_gets_one_email_per_member_per_kind_per_seven_days(rig: Rig, sink: MailSink) -> None:
    first = t.overextended("ana", ["design"], window_end=t.WINDOW_END)
    again = t.overextended("ana", ["design"], window_end=t.WINDOW_END + timedelta(days=3))
    other_kind = t.disconnected("ana", ["design"], window_end=t.WINDOW_END + timedelta(days=3))
    week_later = t.overextended("ana", ["design"], window_end=t.WINDOW_END + timedelta(days=8))
    envs = [t.envelope(first, occurred_at=t.at(0)), t.envelope(again, occurred_at=t.at(3)),
            t.envelope(other_kind, occurred_at=t.at(3)), t.envelope(week_later, occurred_at=t.at(8))]
    rig.feeder.feed([*t.organisation(), *zip(envs, [first, again, other_kind, week_later], strict=True)])
    rig.drain()

    statuses = {str(e.event_id): rig.rows(alert_id=str(e.event_id))[0] for e in envs}
    assert [statuses[str(e.event_id)]["status"] for e in envs] == ["sent", "suppressed", "sent", "sent"]
    reason = statuses[str(envs[1].event_id)]["last_error"]
    assert reason.startswith("rate limit: bo was told about ana (overextended) on 2025-05-01")
    assert len(sink.messages()) == 3


def test_an_all_clear_goes_to_those_told_and_is_not_rate_limited(rig: Rig, sink: MailSink) -> None:
    raised = t.overextended("ana", ["design"])
    raised_env = t.envelope(raised, occurred_at=t.at(0))
    clear = t.cleared(raised_env, raised)
    again = t.overextended("ana", ["design"], window_end=t.WINDOW_END + timedelta(days=2))
    again_env = t.envelope(again, occurred_at=t.at(2))
    clear_again = t.cleared(again_env, again)
    clear_again_env = t.envelope(clear_again, occurred_at=t.at(3))
    rig.feeder.feed([*t.organisation(), (raised_env, raised), (t.envelope(clear, occurred_at=t.at(1)), clear),
                     (again_env, again), (clear_again_env, clear_again)])
    rig.drain()
    # raise sent, all clear sent; raised again 2 days later: suppressed, so its all clear has nobody to tell
    assert [s.split(":")[0] for _, s in sent_to(sink)] == ["Heads-up", "All clear"]
    assert rig.rows(alert_id=str(again_env.event_id))[0]["status"] == "suppressed"
    assert rig.alert(clear_again_env.event_id)["status"] == "nothing_to_send"


def test_a_pause_clears_without_an_email_to_anyone(rig: Rig, sink: MailSink) -> None:
    raised = t.overextended("ana", ["design"])
    raised_env = t.envelope(raised, occurred_at=t.at(0))
    rig.feeder.feed([*t.organisation(), (raised_env, raised)])
    rig.drain()
    assert [s.split(":")[0] for _, s in sent_to(sink)] == ["Heads-up"]
    clear = t.cleared(raised_env, raised, reason="paused")
    clear_env = t.envelope(clear, occurred_at=t.at(1))
    # A v1 clear (no reason) of a member paused that day is not mailed either.
    again = t.disconnected("cy", ["design"])
    again_env = t.envelope(again, occurred_at=t.at(1))
    old_clear = t.cleared(again_env, again, reason=None)
    old_clear_env = t.envelope(old_clear, occurred_at=t.at(2))
    rig.feeder.feed([t.pause("ana"), (clear_env, clear), t.pause("cy"), (again_env, again),
                     (old_clear_env, old_clear)])
    rig.drain()
    assert [s.split(":")[0] for _, s in sent_to(sink)] == ["Heads-up", "Heads-up"]  # ana's, then cy's raise
    assert rig.alert(clear_env.event_id)["reason"] == "cleared by a pause: a pause is never reported"
    assert rig.alert(old_clear_env.event_id)["status"] == "nothing_to_send"
    assert rig.rows(alert_id=str(clear_env.event_id)) == []


# --- faults -------------------------------------------------------------------------------------


def test_a_permanent_rejection_is_recorded_as_failed_and_the_others_are_delivered(rig: Rig, sink: MailSink) -> None:
    sink.refuse("bo@example.org")
    rig.feeder.feed([*t.organisation(), t.leads("design", "bo", "zed"), t.overextended("ana", ["design"]),
                     t.disconnected("cy", ["design"])])
    rig.drain()
    assert sorted(to for to, _ in sent_to(sink)) == ["zed@example.org", "zed@example.org"]
    failed = rig.rows(recipient="bo")
    assert [r["status"] for r in failed] == ["failed", "failed"]
    assert all(r["last_error"].startswith("recipient refused: 550") for r in failed)
    assert rig.sender.health_reason() is None  # a bad address is not an outage


def test_smtp_down_then_up_every_alert_arrives_once(rig: Rig, sink: MailSink) -> None:
    sink.down()
    rig.feeder.feed([*t.organisation(), t.overextended("ana", ["design"]), t.disconnected("cy", ["design"])])
    rig.sender.send_due()
    pending = rig.rows(status="pending")
    tried = max(pending, key=lambda r: r["attempts"])  # whichever the sender tried first
    assert len(pending) == 2 and tried["attempts"] == 1
    assert "Connection refused" in tried["last_error"]
    reason = rig.sender.health_reason()
    assert reason is not None and reason.startswith("degraded: SMTP unreachable: ")

    def most_attempts() -> int:
        return max(r["attempts"] for r in rig.rows(status="pending"))

    wait_for(lambda: (rig.sender.send_due(), most_attempts() >= 3)[1], timeout_s=10,
             interval_s=0.02, what="backoff retries while the server is down")
    sink.up()
    rig.drain()
    assert sorted(Counter(m["Message-ID"] for m in sink.messages()).values()) == [1, 1]
    assert rig.sender.health_reason() is None


def test_smtp_credentials_are_used_and_refused_credentials_keep_alerts_pending(tmp_path: Path, url: str) -> None:
    with MailSink(tmp_path / "auth-mail", credentials=("notify", "s3cret")) as sink:
        wrong = Rig(url, sink, user="notify", password="guess")
        wrong.feeder.feed([*t.organisation(), t.overextended("ana", ["design"])])
        wrong.sender.send_due()
        (row,) = wrong.rows(status="pending")  # a configuration problem, not a reason to drop the alert
        assert row["last_error"].startswith("authentication failed: 535")
        assert wrong.sender.health_reason().startswith("degraded: SMTP unreachable: authentication failed: 535")
        wrong.close()

        right = Rig(url, sink, user="notify", password="s3cret")
        right.drain()
        assert [to for to, _ in sent_to(sink)] == ["bo@example.org"]
        right.close()


class Crash(BaseException):
    """The process dies here: nothing after it runs (open transactions roll back, as on SIGKILL)."""


STEPS = ["plan:before_commit", "plan:after_commit", "send:claimed", "send:before_smtp",
         "send:after_smtp_accept", "send:after_mark_sent"]


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_any_step_loses_nothing_and_repeats_only_between_smtp_acceptance_and_marking(
        url: str, sink: MailSink, step: str) -> None:
    seen: Counter[str] = Counter()

    def crash_on_second(at: str) -> None:
        seen[at] += 1
        # plan steps happen once (one batch); send steps crash on the second delivery, after one went fine
        if at == step and seen[at] == (1 if at.startswith("plan:") else 2):
            raise Crash(at)

    first = Rig(url, sink, crash_hook=crash_on_second)
    records = first.feeder.append([*t.organisation(), t.leads("design", "bo", "zed"), t.overextended("ana", ["design"]),
                                  t.disconnected("cy", ["design"]), t.overextended("zed", ["studio"])])
    with pytest.raises(Crash):
        first.feeder.apply_records(records)
        first.drain()
    first.close()

    # Restart: a new process on the same database resumes from the stored offsets, like the consumer.
    second = Rig(url, sink)
    stored = second.projection.load_offsets(sorted({(r.topic, r.partition) for r in records}))
    again = [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]
    if again:
        second.feeder.apply_records(again)
    second.drain()

    expected = {f"<{r['alert_id']}.{r['recipient']}@reciprocity.local>" for r in second.rows()}
    assert len(expected) == 4  # ana -> bo, zed; cy -> bo, zed; zed leads studio with nobody above: waits
    received = Counter(m["Message-ID"] for m in sink.messages())
    assert set(received) == expected, "every alert arrives"
    duplicates = sorted(mid for mid, n in received.items() if n > 1)
    if step == "send:after_smtp_accept":
        assert len(duplicates) == 1, "the documented window: accepted by SMTP, not yet marked sent"
    else:
        assert duplicates == []
    assert all(r["status"] == "sent" for r in second.rows())
    second.close()


# --- PostgreSQL and the schema -----------------------------------------------------------------


@pytest.mark.postgres
def test_the_same_flow_on_postgresql(postgres_url: str, sink: MailSink) -> None:
    pg = Rig(postgres_url, sink)
    try:
        sink.refuse("zed@example.org")
        raised = t.overextended("ana", ["design"])
        again = t.overextended("ana", ["design"], window_end=t.WINDOW_END + timedelta(days=1))
        records = pg.feeder.append([*t.organisation(), t.leads("design", "bo", "zed"),
                                   (t.envelope(raised, occurred_at=t.at(0)), raised),
                                   (t.envelope(again, occurred_at=t.at(1)), again)])
        pg.feeder.apply_records(records)
        with pytest.raises(StaleBatch):
            pg.feeder.apply_records(records)
        pg.drain()
        assert [to for to, _ in sent_to(sink)] == ["bo@example.org"]
        assert sorted(r["status"] for r in pg.rows()) == ["failed", "sent", "suppressed", "suppressed"]
        store.rewind_offsets(pg.engine)
        pg.feeder.replay()
        pg.drain()
        assert len(sink.messages()) == 1
    finally:
        pg.close()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_migrations_build_exactly_the_schema_the_code_uses(database: str, request: pytest.FixtureRequest,
                                                              tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/schema.db" if database == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    try:
        store.migrate(engine)
        store.migrate(engine)  # idempotent: every start runs it
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "version_table": store.VERSION_TABLE,
                # one database may hold every service: compare notify's tables only
                "include_name": lambda name, kind, _parent: kind != "table" or name.startswith("notify_"),
            })
            diff = compare_metadata(context, store.metadata)
            version = conn.execute(sa.text("SELECT version_num FROM notify_alembic_version")).scalar_one()
        assert diff == []
        assert version == "notify_0005"
    finally:
        engine.dispose()


# --- the HTTP side -------------------------------------------------------------------------------


def test_the_operator_api_lists_deliveries_and_alerts_and_rejects_bad_input(url: str, sink: MailSink) -> None:
    from reciprocity.notify.app import create_app
    from reciprocity.notify.bootstrap import Notifier
    from reciprocity.notify.settings import NotifySettings

    # Not started: no Kafka needed to read the database; /health says Kafka is not connected.
    notifier = Notifier(NotifySettings(database_url=url, smtp_port=sink.port, kafka_bootstrap_servers="127.0.0.1:9"))
    client = authorized(create_app(notifier=notifier).test_client(), notifier.settings.notify_token)
    try:
        sink.refuse("bo@example.org")
        signal = t.overextended("ana", ["design"])
        env = t.envelope(signal)
        t.Feeder(notifier.projection).feed([*t.organisation(), t.leads("design", "bo", "zed"), (env, signal)])
        notifier.sender.send_due()

        failed = client.get("/v1/deliveries?status=failed").get_json()
        assert [(d["recipient"], d["to"], d["status"]) for d in failed["deliveries"]] == [
            ("bo", "bo@example.org", "failed")]
        assert failed["deliveries"][0]["last_error"].startswith("recipient refused: 550")
        assert failed["counts"] == {"pending": 0, "sent": 1, "failed": 1, "suppressed": 0}
        assert set(failed["deliveries"][0]) == {"alert_id", "signal_type", "kind", "member_id", "recipient", "to",
                                                "subject", "status", "attempts", "last_error", "signal_at",
                                                "created_at", "next_attempt_at", "sent_at"}
        assert [d["recipient"] for d in client.get("/v1/deliveries?member=ana").get_json()["deliveries"]] == [
            "bo", "zed"]

        alert = client.get(f"/v1/alerts/{env.event_id}").get_json()
        assert (alert["status"], alert["member_id"], alert["kind"]) == ("planned", "ana", "overextended")
        assert sorted((d["recipient"], d["status"]) for d in alert["deliveries"]) == [("bo", "failed"),
                                                                                     ("zed", "sent")]
        assert client.get("/v1/alerts/nope").status_code == 404
        assert client.get("/v1/deliveries?status=lost").status_code == 422
        assert client.get("/v1/deliveries?limit=0").status_code == 422
        assert client.get("/v1/deliveries?limit=many").status_code == 422

        health = client.get("/health")
        assert health.status_code == 503
        assert health.get_json()["checks"] == {"database": "ok", "kafka": "not connected to Kafka", "smtp": "ok"}
        metrics = client.get("/metrics").text
        assert 'notify_deliveries{status="failed"} 1.0' in metrics and "notify_deliveries_pending 0.0" in metrics
    finally:
        notifier.close()
