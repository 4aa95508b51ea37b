"""The dashboard and the people page, their htmx partials, and what a member sees about herself."""

from __future__ import annotations

import re

from tests.support.web_fakes import hidden
from tests.support.web_pages import client_as, text


def test_people_page_and_its_partial(app) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    full = client.get("/people")
    assert full.status_code == 200
    page = text(full)
    assert "<html" in page and 'hx-trigger="every 5s"' in page and 'id="people-table"' in page
    assert "HX-Request" in full.headers["Vary"]
    partial = client.get("/people", headers={"HX-Request": "true"})
    assert "<html" not in text(partial)
    assert 'id="people-table"' in text(partial)
    assert "HX-Request" in partial.headers["Vary"]
    row = re.search(r'<tr id="person-ben" data-member="ben">.*?</tr>', text(partial), re.S)
    assert row and 'class="num given" data-minutes="165"' in row.group(0)
    assert 'class="num received" data-minutes="30"' in row.group(0)


def test_people_with_only_pending_exchanges_show_what_waits(app, clients) -> None:  # type: ignore[no-untyped-def]
    clients.balance.add_member("eve", "Eve Moss", ["garden"])
    clients.balance.add_exchange("ada", "eve", kind="help", minutes=50)  # waiting; nothing acknowledged
    client = client_as(app, "ada")
    page = text(client.get("/people"))
    row = re.search(r'<tr id="person-eve".*?</tr>', page, re.S)
    assert row, "a person with only pending exchanges is listed"
    cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(0)))
    given = re.search(r'<td data-label="You gave" class="num given".*?</td>', row.group(0), re.S)
    assert given and re.sub(r"<[^>]+>", "", given.group(0)).strip() == "50 min waiting"  # not "0 min"
    assert "50 min waiting" in cells and "nothing acknowledged yet" in cells
    assert "Help: 50 min given, waiting for acknowledgement" in cells
    assert cells.count("waiting for acknowledgement") == 1  # balance lists every kind; the zeros are not shown
    ben = re.search(r'<tr id="person-ben".*?</tr>', page, re.S)
    assert ben and 'data-pending-minutes="25"' in ben.group(0) and "+ 25 min waiting" in ben.group(0)
    member = text(client.get("/members/ada"))
    assert re.search(r'<tr data-member="eve">.*?50 min waiting.*?</tr>', member, re.S)


def test_people_come_a_page_at_a_time_by_name(app, clients) -> None:  # type: ignore[no-untyped-def]
    """A long history holds many people: the page lists PEOPLE_PAGE of them by name, with a link to the
    next ones, and its htmx poll keeps to the page it shows."""
    from reciprocity.web.pages_me import PEOPLE_PAGE

    for i in range(PEOPLE_PAGE + 5):
        clients.balance.add_member(f"p{i:02d}", f"Person {i:02d}", ["garden"])
        clients.balance.add_exchange("ada", f"p{i:02d}", kind="help", minutes=10 + i)
    client = client_as(app, "ada")
    first = text(client.get("/people"))
    listed = re.findall(r'<tr id="person-([a-z0-9-]+)"', first)
    assert len(listed) == PEOPLE_PAGE and 'id="people-first"' not in first
    more = re.search(r'<a href="([^"]+)" id="people-more">', first)
    assert more, "a link to the next people"
    second = text(client.get(more.group(1).replace("&amp;", "&")))
    rest = re.findall(r'<tr id="person-([a-z0-9-]+)"', second)
    assert rest and not set(rest) & set(listed) and 'id="people-more"' not in second
    assert 'id="people-first"' in second and "after=" in re.search(r'hx-get="([^"]+)"', second).group(1)
    everyone = sorted(clients.balance.relationships("ada"), key=lambda r: (r.name.lower(), r.other))
    assert listed + rest == [r.other for r in everyone]


def test_headline_totals_count_what_waits_and_say_so(app, clients) -> None:  # type: ignore[no-untyped-def]
    """The numbers agree with the alerts (which count pending too): the total, then the split."""
    numbers = text(client_as(app, "ada").get("/", headers={"HX-Request": "true", "HX-Target": "numbers"}))
    given = re.search(r'<div class="stat" id="given-total".*?</div>', numbers, re.S)
    assert given and 'data-total-minutes="260"' in given.group(0)  # 210 acknowledged + 50 waiting (4 weeks)
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", given.group(0)))
    assert "4 h 20 min 3 h 30 min acknowledged, 50 min waiting for acknowledgement" in words
    assert "acknowledged exchanges only" in numbers  # the reciprocity index is settled only
    lead = text(client_as(app, "lena").get("/members/ada"))
    assert 'data-total-minutes="260"' in lead and "waiting for acknowledgement" in lead
    assert "last 12 weeks, acknowledged exchanges" in lead
    # the alert says what it counts
    assert "counting the exchanges they recorded that still wait for acknowledgement" in lead


def test_her_own_alert_is_worded_for_her_and_the_leads_view_is_unchanged(app) -> None:  # type: ignore[no-untyped-def]
    own = re.sub(r"\s+", " ", text(client_as(app, "ada").get("/members/ada")))
    assert "Ask how they are" not in own
    assert "You may be over-extended" in own and "It is fine to say no" in own
    lead = re.sub(r"\s+", " ", text(client_as(app, "lena").get("/members/ada")))
    assert "Ada Lovelace may be over-extended" in lead and "Ask how they are" in lead
    assert "You may be over-extended" not in lead


def test_dashboard_regions_poll_their_own_partials(app) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    page = text(client.get("/"))
    assert 'id="numbers"' in page and 'id="inbox"' in page and "<svg" in page
    numbers = client.get("/", headers={"HX-Request": "true", "HX-Target": "numbers"})
    assert 'id="given-total"' in text(numbers) and "<html" not in text(numbers) and "pending-list" not in text(numbers)
    assert {"HX-Request", "HX-Target"} <= set(numbers.headers["Vary"].split(", "))
    inbox = client.get("/", headers={"HX-Request": "true", "HX-Target": "inbox"})
    assert 'id="pending-list"' in text(inbox) and 'id="given-total"' not in text(inbox)
    assert "Ben Okafor gave you 25 min of feedback" in text(inbox)


def test_pages_work_without_javascript(app) -> None:  # type: ignore[no-untyped-def]
    """Every page a member reads is complete HTML on its own; htmx only refreshes parts of it."""
    client = client_as(app, "lena")
    for path in ("/", "/people", "/exchanges", "/exchanges/new", "/capacity", "/circles", "/circles/garden",
                 "/wall", "/members/ada"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "</html>" in text(answer), path
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert answer.headers["Cache-Control"] == "private, no-store"


def test_static_htmx_is_served_locally(app) -> None:  # type: ignore[no-untyped-def]
    answer = app.test_client().get("/static/htmx.min.js")
    assert answer.status_code == 200 and b"htmx" in answer.data[:200]


def test_a_member_sees_on_her_dashboard_what_her_leads_were_told_about_her(app, clients) -> None:  # type: ignore[no-untyped-def]
    page = text(client_as(app, "ada").get("/"))
    about = re.search(r'<section class="card attention"[^>]*id="about-me">.*?</section>', page, re.S)
    assert about, "ada's dashboard says nothing of the alert about her"
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", about.group(0)))
    assert "You may be carrying a lot" in words and "your leads were told on" in words
    signal = clients.balance.signal_list[0]
    assert f"you gave {signal.details['given_minutes'] // 60} h" in words  # the numbers the leads got
    assert "Ask how they are" not in words  # the advice meant for her leads is not hers
    for other in ("ben", "lena"):  # nobody else's dashboard shows it
        assert 'id="about-me"' not in text(client_as(app, other).get("/"))


def test_a_member_turns_her_own_alert_emails_off(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    page = text(ada.get("/capacity"))
    assert 'id="own_alert_emails" checked' in page and 'id="daily_digest" checked' in page
    answer = ada.post("/capacity/emails", data={"csrf_token": hidden(page, "csrf_token"), "daily_digest": "on",
                                                "idempotency_key": hidden(page.split('id="emails-form"')[1],
                                                                          "idempotency_key")})
    assert answer.status_code == 302
    assert clients.ledger.commands[-1][:2] == ("set_email_settings", {
        "member": "ada", "own_alert_emails": False, "daily_digest": True})
    again = text(ada.get("/capacity"))
    assert 'id="own_alert_emails" checked' not in again and 'id="daily_digest" checked' in again


def _words(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_inbox_lists_the_newest_waiting_and_links_to_all_of_them(app, clients) -> None:  # type: ignore[no-untyped-def]
    """However much waits, the dashboard lists the newest ten for her answer, says how many in all, and
    links to the history of exactly those; what she recorded is counted, not listed."""
    from datetime import date, timedelta

    client = client_as(app, "ada")
    inbox = text(client.get("/", headers={"HX-Request": "true", "HX-Target": "inbox"}))
    assert "Waiting for you (1)" in _words(inbox) and 'id="pending-more"' not in inbox  # the demo world's one
    assert "1 you recorded is waiting for the other person" in _words(inbox)
    for i in range(14):
        clients.balance.add_exchange("ben", "ada", minutes=10 + i, recorded_by="ben", exchange_id=f"wait-{i:02d}",
                                     occurred_on=date.today() - timedelta(days=2 + i))
    clients.balance.add_exchange("ada", "ben", minutes=5, recorded_by="ada", exchange_id="hers-1")
    page = text(client.get("/"))
    listed = re.findall(r'href="/exchanges/([\w-]+)"', re.search(r'id="pending-list">(.*?)</ul>', page, re.S).group(1))
    # The ten newest, newest first (the demo world's, from yesterday, then these from two days ago on).
    assert listed == ["pending-for-ada", *(f"wait-{i:02d}" for i in range(9))], listed
    words = _words(page)
    assert "Waiting for you (15)" in words and "The 10 newest are shown. See all 15 waiting for you" in words
    more = re.search(r'id="pending-more">.*?href="([^"]+)"', page, re.S).group(1).replace("&amp;", "&")
    assert "2 you recorded are waiting for the other person" in words
    assert "15 exchanges are waiting for your acknowledgement" in words  # the prompt counts them all too
    # The link lists every one of them, a page at a time, and nothing she recorded.
    history = text(client.get(more))
    assert "Waiting for you" in history and "Only those recorded by the other person" in _words(history)
    on_the_page = set(re.findall(r'href="/exchanges/([\w-]+)"', re.search(r'id="history-list">(.*?)</ul>',
                                                                            history, re.S).group(1)))
    assert {f"wait-{i:02d}" for i in range(14)} | {"pending-for-ada"} == on_the_page


def test_the_inbox_says_at_least_when_balance_stopped_counting(app, clients) -> None:  # type: ignore[no-untyped-def]
    from datetime import date, timedelta

    for i in range(30):
        clients.balance.add_exchange("ben", "ada", recorded_by="ben", exchange_id=f"wait-{i:02d}",
                                     occurred_on=date.today() - timedelta(days=i))
    clients.balance.waiting_count_reads = 20  # balance read 20 of the 32 waiting, then stopped
    words = _words(text(client_as(app, "ada").get("/")))
    counted = re.search(r"Waiting for you \((\d+)\+\)", words)
    assert counted and 10 <= int(counted.group(1)) <= 31, words
    assert f"See all {counted.group(1)}+ waiting for you" in words
    assert f"{counted.group(1)} or more exchanges are waiting for your acknowledgement" in words
