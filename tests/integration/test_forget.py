"""A member is forgotten, end to end, on SQLite and on PostgreSQL.

Real ledger, balance and notify processes on a real broker, a real SMTP sink and the web's account
store. Zuzanna has exchanges with notes, thanks, a dispute, an alert email about her to her lead and
a web account. After `reciprocity forget`, a scan of the raw bytes of every record of every topic, of
every row of every table of every service's database, of the exports and of the services' logs finds
none of her name, email or words; everyone else's numbers and the circle's measures are unchanged; a
full replay of balance rebuilds the same anonymised read models.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition
from reciprocity.cli.main import main as cli
from reciprocity.common.db import make_engine
from reciprocity.contracts.topics import all_topics
from reciprocity.messaging.topics_admin import ensure_topics
from reciprocity.web.accounts import AccountStore

from devstack.mail_sink import MailSink
from tests.support.auth import BALANCE_TOKEN, NOTIFY_TOKEN, bearer
from tests.support.ledger import TOKEN
from tests.support.services import ServiceProcess, wait_for, worker

pytestmark = pytest.mark.kafka

AUTH = bearer(TOKEN)
TO_BALANCE, TO_NOTIFY = bearer(BALANCE_TOKEN), bearer(NOTIFY_TOKEN)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {s: f"sqlite:///{tmp_path}/{s}.db" for s in ("balance", "notify", "web")}
    url = request.getfixturevalue("postgres_url")  # one database for all three, as production may share one
    return {s: url for s in ("balance", "notify", "web")}


class Org:
    def __init__(self, u: str) -> None:
        self.u = u
        self.circle = f"circle-{u}"
        self.zoe, self.bob, self.cleo, self.dan, self.lead, self.op = (
            f"{n}-{u}" for n in ("zoe", "bob", "cleo", "dan", "lead", "op"))
        # Everything of or about her that must disappear.
        self.name = f"Zuzanna Quillfeather {u}"
        self.email = f"zuzanna.quill.{u}@example.org"
        self.words = [f"Zuzanna's private note {u}", f"Deeply grateful thanks {u}", f"Her dispute reason {u}",
                      f"Bob's note about Zuzanna {u}"]

    @property
    def secrets(self) -> list[str]:
        return [self.name, self.email, *self.words, self.name.split()[1]]


def _post(url: str, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    answer = requests.post(url + path, json=body, headers={**AUTH, "Idempotency-Key": key}, timeout=15)
    assert answer.status_code in (200, 201), (path, answer.status_code, answer.text)
    return answer.json()


def _put(url: str, path: str, body: dict[str, Any], key: str) -> None:
    answer = requests.put(url + path, json=body, headers={**AUTH, "Idempotency-Key": key}, timeout=15)
    assert answer.status_code in (200, 201), (path, answer.status_code, answer.text)


def _build(ledger: str, org: Org) -> dict[str, str]:
    today = datetime.now(UTC).date()
    _post(ledger, "/v1/circles", {"id": org.circle, "name": "Harbour"}, f"c-{org.u}")
    people = [(org.zoe, org.name, org.email, "member"), (org.bob, "Bob Bright", f"bob.{org.u}@example.org", "member"),
              (org.cleo, "Cleo Calm", f"cleo.{org.u}@example.org", "member"),
              (org.dan, "Dan Dune", f"dan.{org.u}@example.org", "member"),
              (org.lead, "Lena Lead", f"lena.{org.u}@example.org", "member"),
              (org.op, "Olu Operator", f"olu.{org.u}@example.org", "operator")]
    for member_id, name, email, role in people:
        _post(ledger, "/v1/members", {"id": member_id, "name": name, "email": email, "circles": [org.circle],
                                      "role": role}, f"m-{member_id}")
    _put(ledger, f"/v1/circles/{org.circle}/leads", {"leads": [org.lead]}, f"l-{org.u}")

    def record(giver: str, receiver: str, minutes: int, note: str, key: str, days: int = 1) -> str:
        return _post(ledger, "/v1/exchanges", {
            "giver": giver, "receiver": receiver, "kind": "mentoring", "minutes": minutes, "note": note,
            "occurred_on": (today - timedelta(days=days)).isoformat(), "recorded_by": giver}, key)["id"]

    xs = {
        # She gives a lot and receives little: her lead gets an alert email about her.
        "given": record(org.zoe, org.bob, 300, org.words[0], f"x1-{org.u}"),
        "disputed": record(org.bob, org.zoe, 30, org.words[3], f"x2-{org.u}"),
        "others": record(org.cleo, org.dan, 45, "cleo and dan, nothing of hers", f"x3-{org.u}"),
        "others2": record(org.dan, org.bob, 20, "", f"x4-{org.u}", days=3),
    }
    _post(ledger, f"/v1/exchanges/{xs['given']}/acknowledge", {"by": org.bob, "thanks": org.words[1]}, f"a-{org.u}")
    _post(ledger, f"/v1/exchanges/{xs['disputed']}/dispute", {"by": org.zoe, "reason": org.words[2]}, f"d-{org.u}")
    _post(ledger, f"/v1/exchanges/{xs['others']}/acknowledge", {"by": org.dan, "thanks": "thanks Cleo"}, f"a2-{org.u}")
    return xs


def _records(bootstrap: str, prefix: str) -> Iterator[bytes]:
    """The raw bytes of every record of every topic of this test (keys, values, headers), as a consumer
    reads them, aborted transactions included."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_uncommitted")
    try:
        topics = [t for t in consumer.topics() if t.startswith(prefix)]
        assert len(topics) >= 6
        parts = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        done = {tp for tp in parts if ends[tp] == 0}
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while len(done) < len(parts):
            assert datetime.now(UTC) < deadline, "reading every topic took too long"
            for batch in consumer.poll(timeout_ms=500).values():
                for record in batch:
                    yield (record.key or b"") + b"\0" + (record.value or b"") + b"".join(
                        k.encode() + (v or b"") for k, v in record.headers or [])
            done |= {tp for tp in parts if consumer.position(tp) >= ends[tp]}
    finally:
        consumer.close()


def _rows(url: str) -> list[tuple[str, str]]:
    """Every row of every table of a database, as (table, text)."""
    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        found = []
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(sa.select(table)):
                    found.append((table.name, " | ".join(str(v) for v in row)))
        return found
    finally:
        engine.dispose()


def _hits(texts: list[tuple[str, str]], secrets: list[str]) -> list[tuple[str, str]]:
    lowered = [s.lower() for s in secrets]
    return [(where, s) for where, text in texts for s in lowered if s in text.lower()]


def _numbers(balance: str, org: Org) -> dict[str, Any]:
    got: dict[str, Any] = {}
    for member in (org.bob, org.cleo, org.dan, org.lead, org.zoe):
        answer = requests.get(f"{balance}/v1/members/{member}/summary", headers=TO_BALANCE, timeout=10)
        assert answer.status_code == 200, answer.text
        got[member] = answer.json()
    answer = requests.get(f"{balance}/v1/circles/{org.circle}/health?picture=flows", headers=TO_BALANCE, timeout=10)
    assert answer.status_code == 200, answer.text
    got["circle"] = answer.json()
    return got


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli(list(argv))
    return code, capsys.readouterr().out


def test_a_forgotten_member_leaves_nothing_readable(kafka_bootstrap: str, unique_id: str, tmp_path: Path,
                                                     database_urls: dict[str, str], monkeypatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    org = Org(unique_id)
    prefix = f"t.forget.{unique_id}."
    ensure_topics(kafka_bootstrap, all_topics(prefix))
    common = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix, "LEDGER_TOKEN": TOKEN,
              "LOG_LEVEL": "INFO"}
    accounts = AccountStore(database_urls["web"])
    accounts.set_password(org.zoe, "her own password 1")
    accounts.set_password(org.bob, "his own password 1")

    with ExitStack() as stack:
        sink = stack.enter_context(MailSink(tmp_path / "mail"))
        ledger = stack.enter_context(ServiceProcess("reciprocity.ledger.app", env=common, log_dir=tmp_path))
        with_ledger = {**common, "LEDGER_URL": ledger.url}
        balance_env = {**with_ledger, "DATABASE_URL": database_urls["balance"], "BALANCE_SIGNAL_SETTLE_S": "0.3",
                       "BALANCE_SWEEP_INTERVAL_S": "1"}
        notify_env = {**with_ledger, "DATABASE_URL": database_urls["notify"], "SMTP_PORT": str(sink.port),
                      "NOTIFY_POLL_S": "0.1", "WEB_BASE_URL": "https://reciprocity.example"}
        roles = (("reciprocity.balance.worker", "projector", balance_env),
                 ("reciprocity.balance.worker", "sweep", balance_env),
                 ("reciprocity.notify.worker", "sender", notify_env))
        processes = [ledger] + [stack.enter_context(worker(module, role, env=env, log_dir=tmp_path))
                                for module, role, env in roles]
        balance = stack.enter_context(ServiceProcess("reciprocity.balance.app", env=balance_env, log_dir=tmp_path))
        notify = stack.enter_context(ServiceProcess("reciprocity.notify.app", env=notify_env, log_dir=tmp_path))
        processes += [balance, notify]

        xs = _build(ledger.url, org)
        # The alert about her reached her lead, and balance shows her words to those allowed to see them.
        # Picked out by its recipient: from NOTIFY_DIGEST_HOUR (08:00 UTC) on, her own daily digest, which
        # names her too, may arrive first.
        to_lead = f"lena.{org.u}@example.org"
        wait_for(lambda: [m for m in sink.messages() if org.name in str(m) and m["X-RcptTo"] == to_lead],
                 timeout_s=90, what="the alert email about her, to her lead")
        def balance_get(path: str) -> requests.Response:
            return requests.get(f"{balance.url}{path}", headers=TO_BALANCE, timeout=10)

        shown = wait_for(lambda: (lambda r: r.json() if r.status_code == 200 and r.json().get("thanks") else None)(
            balance_get(f"/v1/exchanges/{xs['given']}")), what="her exchange in balance")
        assert shown["note"] == org.words[0] and shown["thanks"] == org.words[1]
        before = _numbers(balance.url, org)
        assert before[org.bob]["received"]["minutes"] == 300 and before["circle"]["participation_rate"] is not None

        # --- forget her ---------------------------------------------------------------------------
        for name, value in {**with_ledger, "DATABASE_URL": database_urls["web"]}.items():
            monkeypatch.setenv(name, value)
        code, _ = _cli(capsys, "forget", org.zoe, "--by", org.bob, "--confirm", org.zoe)
        assert code == 1  # only an operator may ask
        code, out = _cli(capsys, "forget", org.zoe, "--by", org.op, "--confirm", org.zoe)
        assert code == 0 and "web sign-in removed" in out
        assert not accounts.has_account(org.zoe) and accounts.has_account(org.bob)

        def forgotten_everywhere() -> bool:
            member = balance_get(f"/v1/directory/members/{org.zoe}").json()
            deliveries = requests.get(f"{notify.url}/v1/deliveries", params={"limit": 1000}, headers=TO_NOTIFY,
                                      timeout=10).json()
            return member.get("name") == "a former member" and not _hits(
                [("notify", str(deliveries))], org.secrets)

        wait_for(forgotten_everywhere, timeout_s=60, what="balance and notify to blank her")
        answer = requests.get(f"{ledger.url}/v1/forgettings", headers=AUTH, timeout=10).json()
        assert [f["requested_by"] for f in answer["forgettings"]] == [org.op]
        assert org.zoe not in str(answer)
        after = _numbers(balance.url, org)
        for member in (org.bob, org.cleo, org.dan, org.lead):
            assert after[member] == before[member], member  # everyone else's numbers
        assert after["circle"] == before["circle"]  # the circle's measures
        assert after[org.zoe]["given"] == before[org.zoe]["given"]  # her exchanges still count
        former = balance_get(f"/v1/exchanges/{xs['given']}").json()
        assert (former["note"], former["thanks"], former["giver_name"]) == ("", None, "a former member")

        # --- exports ------------------------------------------------------------------------------
        monkeypatch.setenv("DATABASE_URL", database_urls["balance"])
        code, exchanges_csv = _cli(capsys, "export", "exchanges", "--csv")
        assert code == 0 and len(list(csv.DictReader(io.StringIO(exchanges_csv)))) == 4
        code, balances_csv = _cli(capsys, "export", "balances", "--csv")
        assert code == 0 and org.zoe in balances_csv  # her numbers stay, under her id

        # --- a full replay rebuilds the same anonymised read models -----------------------------------
        code, _ = _cli(capsys, "replay", "balance", "--quiet")
        assert code == 0
        assert wait_for(lambda: balance_get("/v1/projection/status").json()
                        .get("generation") == 2, what="the replayed generation active")
        assert _numbers(balance.url, org) == after
        rebuilt = balance_get(f"/v1/exchanges/{xs['given']}").json()
        assert {k: v for k, v in rebuilt.items() if k != "updated_at"} == {
            k: v for k, v in former.items() if k != "updated_at"}

        # --- the scan ---------------------------------------------------------------------------------
        texts: list[tuple[str, str]] = [(f"record {i}", raw.decode("utf-8", "replace"))
                                        for i, raw in enumerate(_records(kafka_bootstrap, prefix))]
        assert len(texts) >= 17  # 16 ledger events and at least one signal
        for service, url in database_urls.items():
            texts += [(f"{service}:{table}", row) for table, row in _rows(url)]
        texts += [("export exchanges", exchanges_csv), ("export balances", balances_csv)]
        # Every table: the exchange rows and her counters are still there, just without her words.
        assert any(org.zoe in text for where, text in texts if where.endswith("balance_exchanges"))
        logs = [p.log_path for p in processes]
    texts += [(f"log {p.name}", p.read_text(errors="replace")) for p in logs]
    assert _hits(texts, org.secrets) == []
    # What cannot be recalled: the email delivered before the forgetting (README "Forgetting a member").
    assert any(org.name in str(m) for m in sink.messages())


def test_notify_blanks_every_email_that_names_her_not_only_those_about_or_to_her(tmp_path: Path) -> None:
    """A daily digest to Bob says "Zuzanna recorded ... with you": it is neither about nor to her, and
    must go blank too; an email that does not name her stays as it was."""
    from reciprocity.notify import store
    from reciprocity.notify.directory_view import forget_member

    engine = make_engine(f"sqlite:///{tmp_path}/notify.db")
    store.migrate(engine)
    now = datetime.now(UTC).replace(tzinfo=None)
    row = {"kind": "digest", "signal_type": "Digest", "to_address": "bob@example.org", "to_name": "Bob",
           "status": "sent", "signal_at": now, "created_at": now}
    with engine.begin() as conn:
        conn.execute(sa.insert(store.members), [
            {"member_id": "zoe", "name": "Zoë O'Hara", "email": "zoe@example.org", "role": "member"},
            {"member_id": "bob", "name": "Bob", "email": "bob@example.org", "role": "member"}])
        conn.execute(sa.insert(store.deliveries), [
            {**row, "alert_id": "d1", "recipient": "bob", "member_id": "bob", "subject": "Your day",
             "text_body": "Zoë O'Hara recorded mentoring with you", "html_body": "<p>Zoë O&#x27;Hara recorded</p>"},
            {**row, "alert_id": "d2", "recipient": "bob", "member_id": "bob", "subject": "Your day",
             "text_body": "Dan recorded help with you", "html_body": "<p>Dan recorded help</p>", "status": "pending"},
            {**row, "alert_id": "d3", "recipient": "bob", "member_id": "bob", "subject": "Your day",
             "text_body": "", "html_body": "<p>Zo&#235; O&#39;Hara, zoe@example.org</p>", "status": "pending"}])
        forget_member(conn, "zoe")
    with engine.connect() as conn:
        found = {r.alert_id: r for r in conn.execute(sa.select(store.deliveries))}
        member = conn.execute(sa.select(store.members).where(store.members.c.member_id == "zoe")).one()
    assert (member.name, member.email) == (None, None)
    assert found["d1"].text_body == "" and found["d1"].to_address is None and found["d1"].status == "sent"
    assert found["d2"].text_body == "Dan recorded help with you" and found["d2"].status == "pending"
    assert found["d3"].html_body == "" and found["d3"].status == "suppressed"  # her address: not sent
    engine.dispose()
