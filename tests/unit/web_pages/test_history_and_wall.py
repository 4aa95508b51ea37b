"""A member's history (paged, searchable) and the appreciation wall."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import urlencode

from tests.support.web_fakes import hidden
from tests.support.web_pages import client_as, text


def test_wall_shows_what_both_shared_never_the_note_nor_the_minutes(app) -> None:  # type: ignore[no-untyped-def]
    page = text(client_as(app, "chen").get("/wall"))
    assert "Ben Okafor thanks Ada Lovelace" in page  # mentoring, shared by both in demo_world
    assert "mentoring session" not in page  # the private note
    assert "1 h 30 min" not in page  # how long it took is between the two of them
    assert "resource session" not in page  # shared by the recorder only


def test_either_party_stops_sharing_and_the_recorder_can_agree_later(app, clients) -> None:  # type: ignore[no-untyped-def]
    late = clients.balance.add_exchange("dara", "chen", kind="care", status="acknowledged", recorded_by="dara",
                                        thanks="Thank you for the soup", shared_by_acknowledger=True)
    assert "Thank you for the soup" not in text(client_as(app, "omar").get("/wall"))
    dara = client_as(app, "dara")  # the recorder, who did not share at first
    card = text(dara.get(f"/exchanges/{late.exchange_id}"))
    assert "Share it on the wall" in card
    form = {"csrf_token": hidden(card, "csrf_token"), "shared": "yes",
            "idempotency_key": hidden(card.split('id="sharing-form"')[1], "idempotency_key")}
    assert dara.post(f"/exchanges/{late.exchange_id}/sharing", data=form).status_code == 302
    assert "Thank you for the soup" in text(client_as(app, "omar").get("/wall"))
    chen = client_as(app, "chen")  # the other party takes it back
    card = text(chen.get(f"/exchanges/{late.exchange_id}"))
    assert "Stop sharing it" in card
    form = {"csrf_token": hidden(card, "csrf_token"), "shared": "no",
            "idempotency_key": hidden(card.split('id="sharing-form"')[1], "idempotency_key")}
    assert chen.post(f"/exchanges/{late.exchange_id}/sharing", data=form).status_code == 302
    assert "Thank you for the soup" not in text(client_as(app, "omar").get("/wall"))
    assert [c[1] for c in clients.ledger.commands] == [
        {"exchange": late.exchange_id, "by": "dara", "shared": True},
        {"exchange": late.exchange_id, "by": "chen", "shared": False}]


def test_the_wall_is_paged_newest_first_down_to_the_oldest(app, clients) -> None:  # type: ignore[no-untyped-def]
    start = date.today() - timedelta(days=200)
    for i in range(70):
        clients.balance.add_exchange("ada", "ben", kind="help", status="acknowledged", exchange_id=f"w{i:03d}",
                                     occurred_on=start + timedelta(days=i), thanks=f"thanks number {i:03d}",
                                     shared_by_recorder=True, shared_by_acknowledger=True)
    omar, seen, url = client_as(app, "omar"), [], "/wall"
    while url:
        page = text(omar.get(url))
        seen += re.findall(r"thanks number (\d{3})", page)
        older = re.search(r'href="([^"]+)" id="wall-older"', page)
        url = older.group(1).replace("&amp;", "&") if older else ""
    assert "That is everything shared so far" in page
    assert seen == sorted(seen, reverse=True) and seen[-1] == "000" and len(seen) == 70


def test_history_comes_a_page_at_a_time(app, clients) -> None:  # type: ignore[no-untyped-def]
    """The history asks balance for one page and links the next with balance's cursor (a status kept)."""
    from datetime import date, timedelta

    clients.balance.add_member("eve", "Eve Moss", ["garden"])
    made = [clients.balance.add_exchange("ada", "eve", minutes=1 + i, exchange_id=f"x-{i:016x}",
                                         occurred_on=date.today() - timedelta(days=i % 30)).exchange_id
            for i in range(120)]
    mine = {e.exchange_id for e in clients.balance.exchanges("ada", limit=500)}
    client = client_as(app, "ada")
    seen: list[str] = []
    url = "/exchanges"
    for _ in range(10):
        page = text(client.get(url))
        listed = re.findall(r'href="/exchanges/([^"?/]+)"', page.split('id="history-list"')[1].split("</ul>")[0]) \
            if 'id="history-list"' in page else []
        assert len(listed) <= 50
        seen += listed
        older = re.search(r'href="([^"]+)" id="history-older"', page)
        if not older:
            break
        url = older.group(1).replace("&amp;", "&")
    assert len(seen) == len(set(seen)) and set(seen) == mine and set(made) <= set(seen)
    assert 'id="history-newest"' in page  # a later page links back to the newest
    waiting = text(client.get("/exchanges?status=recorded"))
    older = re.search(r'href="([^"]+)" id="history-older"', waiting)
    assert older and "status=recorded" in older.group(1)
    assert client.get("/exchanges?after=not-a-cursor-balance-gave").status_code == 200  # the first page instead


def test_history_is_searchable_by_person_kind_and_dates_and_pages_keep_the_search(  # type: ignore[no-untyped-def]
        app, clients, monkeypatch) -> None:
    from reciprocity.web import pages_exchanges

    monkeypatch.setattr(pages_exchanges, "HISTORY_PAGE", 4)  # several pages of the search
    clients.balance.add_member("eve", "Eve Moss", ["garden"])
    today = date.today()
    for i in range(60):
        clients.balance.add_exchange("ada", "eve" if i % 2 else "ben", kind="care" if i % 3 else "help",
                                     minutes=5 + i, exchange_id=f"s-{i:03d}", occurred_on=today - timedelta(days=i))
    ada = client_as(app, "ada")
    seen: list[str] = []
    since = (today - timedelta(days=50)).isoformat()
    url = "/exchanges?" + urlencode({"with": "Eve Moss", "kind": "care", "from": since})
    while url:
        page = text(ada.get(url))
        seen += re.findall(r'href="/exchanges/(s-\d{3})"', page)
        older = re.search(r'href="([^"]+)" id="history-older"', page)
        url = older.group(1).replace("&amp;", "&") if older else ""
    expected = {f"s-{i:03d}" for i in range(60) if i % 2 and i % 3 and i <= 50}
    assert set(seen) == expected and len(seen) == len(expected) and len(expected) > 4
    unknown = ada.get("/exchanges?with=Nobody+Here")
    assert unknown.status_code == 422 and "There is no member called" in text(unknown)
    backwards = ada.get(f"/exchanges?from={today.isoformat()}&to={(today - timedelta(days=3)).isoformat()}")
    assert backwards.status_code == 422 and "comes before its start" in text(backwards)
