"""Who sees what: members' pages, circles and their measures, the operator page."""

from __future__ import annotations

import re

from tests.support.web_fakes import hidden
from tests.support.web_pages import client_as, text


def test_member_page_for_self_and_leads_only(app) -> None:  # type: ignore[no-untyped-def]
    assert client_as(app, "ada").get("/members/ada").status_code == 200
    lead_view = client_as(app, "lena").get("/members/ada")  # lena leads garden, ada is in garden
    assert lead_view.status_code == 200
    assert "may be over-extended" in text(lead_view)
    assert "Notes on your garden plan" not in text(lead_view)  # numbers, not notes
    refused = client_as(app, "ben").get("/members/ada")
    assert refused.status_code == 403
    assert "for them and for the leads of their circles" in text(refused)
    assert client_as(app, "omar").get("/members/ada").status_code == 403  # leads kitchen; ada is not in it
    assert client_as(app, "omar").get("/members/dara").status_code == 200  # dara is in kitchen


def test_a_parent_circles_lead_sees_the_members_and_alerts_of_nested_circles(app, clients) -> None:  # type: ignore[no-untyped-def]
    # Notify tells a parent circle's leads about a nested circle whose own lead is the one alerted; what
    # they are told about they must be able to open. Here the garden is nested in omar's kitchen.
    garden = clients.balance.circles_by_id["garden"]
    clients.balance.circles_by_id["garden"] = garden.model_copy(update={"parent": "kitchen"})
    omar = client_as(app, "omar")
    page = omar.get("/members/ada")
    assert page.status_code == 200
    assert "Garden circle is nested in a circle you lead" in text(page) and "may be over-extended" in text(page)
    circle = text(omar.get("/circles/garden"))
    assert 'id="alerts"' in circle and "may be over-extended" in circle and "nested in a circle you lead" in circle
    assert client_as(app, "lena").get("/members/omar").status_code == 403  # nesting does not work upwards


def test_operator_page_is_for_operators(app, clients) -> None:  # type: ignore[no-untyped-def]
    clients.notify.failed = [{"alert_id": "a1", "recipient": "lena@example.org", "attempts": 5,
                              "last_error": "SMTP 451", "body": "private words"}]
    ops = client_as(app, "ops")
    page = ops.get("/ops")
    assert page.status_code == 200
    assert "ledger.exchanges" in text(page) and 'hx-trigger="every 2s"' in text(page)
    assert "SMTP 451" in text(page) and "private words" not in text(page)
    assert "Operations" in text(ops.get("/"))  # in the nav
    partial = ops.get("/ops", headers={"HX-Request": "true"})
    assert 'id="projection-table"' in text(partial) and "<html" not in text(partial)
    member = client_as(app, "ada")
    assert member.get("/ops").status_code == 403
    assert ">Operations<" not in text(member.get("/"))


def test_operator_page_lists_forgettings_never_whom(app, clients) -> None:  # type: ignore[no-untyped-def]
    ops = client_as(app, "ops")
    assert 'id="no-forgettings"' in text(ops.get("/ops"))
    clients.ledger.forgotten = [{"at": "2026-12-02T03:40:11.5+00:00", "requested_by": "ops"}]
    page = text(ops.get("/ops"))
    assert 'id="forgettings-list"' in page and "2026-12-02 03:40:11" in page and "reciprocity forget" in page
    clients.ledger.down = True
    assert "The ledger is not answering" in text(ops.get("/ops"))


def test_operator_page_lists_dead_letters_without_their_contents(app, clients) -> None:  # type: ignore[no-untyped-def]
    ops = client_as(app, "ops")
    calm = text(ops.get("/ops"))
    assert 'id="no-dead-letters"' in calm and "No dead letters." in calm
    assert 'data-topic="ledger.exchanges.dlq" data-count="0"' in calm
    assert "reciprocity dlq redrive" in calm and "reciprocity replay balance" in calm  # the hints stay

    clients.balance.add_dead_letter("ledger.exchanges", partition=3, offset=17, key="x-poison",
                                    error="unknown event type 'ExchangeTeleported'")
    clients.balance.add_dead_letter("ledger.directory", partition=1, offset=2, redriven=True,
                                    redriven_to="ledger.directory[1]@9")
    page = text(ops.get("/ops"))
    assert "No dead letters." not in page and 'id="dead-letter-table"' in page
    assert "ledger.exchanges[3]@17" in page and "ExchangeTeleported" in page and "x-poison" in page
    assert 'data-topic="ledger.exchanges.dlq" data-count="1"' in page
    assert 'data-topic="ledger.directory.dlq" data-count="1"' in page and 'id="dead-letter-counts"' in page
    assert 'data-redriven="true"' in page and "ledger.directory[1]@9" in page
    assert 'hx-get="/ops/dead-letters"' in page and 'hx-trigger="every 10s"' in page

    partial = ops.get("/ops/dead-letters", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in text(partial) and "ledger.exchanges[3]@17" in text(partial)
    assert ops.get("/ops/dead-letters").status_code == 302  # a plain visit goes to the section of the page
    assert client_as(app, "ada").get("/ops/dead-letters", headers={"HX-Request": "true"}).status_code == 403


def test_operator_page_says_when_dead_letters_cannot_be_read(app, clients) -> None:  # type: ignore[no-untyped-def]
    clients.balance.dead_letters_error = "dead letters cannot be read: topic ledger.exchanges.dlq does not exist"
    page = client_as(app, "ops").get("/ops")
    assert page.status_code == 200
    assert 'id="dead-letters-error"' in text(page) and "does not exist" in text(page)
    assert 'id="projection-table"' in text(page)  # the rest of the page still works


def test_operator_page_shows_replay_progress(app, clients) -> None:  # type: ignore[no-untyped-def]
    from reciprocity.web.clients.balance import BuildingProgress

    ops = client_as(app, "ops")
    assert 'id="replay-progress"' not in text(ops.get("/ops"))
    clients.balance.status = clients.balance.status.model_copy(update={"building": BuildingProgress(
        generation=4, applied=300, end=1200, progress=0.25)})
    partial = text(ops.get("/ops", headers={"HX-Request": "true"}))
    assert 'id="replay-progress"' in partial and 'data-generation="4"' in partial
    assert '<progress max="100" value="25">' in partial and "300 of 1200 events applied (25%)" in partial
    clients.balance.status = clients.balance.status.model_copy(update={"building": BuildingProgress(
        generation=4, applied=300, end=None, progress=None)})
    partial = text(ops.get("/ops", headers={"HX-Request": "true"}))
    assert "300 of ? events applied" in partial and '<progress max="100">' in partial


def test_operator_page_shows_a_failed_or_interrupted_replay_not_a_ghost(app, clients) -> None:  # type: ignore[no-untyped-def]
    from reciprocity.web.clients.balance import FailedReplay

    ops = client_as(app, "ops")
    assert 'id="replay-failed"' not in text(ops.get("/ops"))
    clients.balance.status = clients.balance.status.model_copy(update={"failed_replay": FailedReplay(generation=5)})
    partial = text(ops.get("/ops", headers={"HX-Request": "true"}))
    assert 'id="replay-failed"' in partial and "The last replay failed" in partial
    assert 'id="replay-progress"' not in partial
    clients.balance.status = clients.balance.status.model_copy(update={"failed_replay": FailedReplay(
        generation=5, interrupted=True)})
    partial = text(ops.get("/ops", headers={"HX-Request": "true"}))
    assert "The last replay was interrupted" in partial and "ended before it could finish" in partial


def test_operator_does_not_see_members_private_pages(app) -> None:  # type: ignore[no-untyped-def]
    ops = client_as(app, "ops")
    assert ops.get("/members/ada").status_code == 403
    assert ops.get("/exchanges/pending-for-ada").status_code == 403


def test_exchange_detail_is_for_its_two_parties(app) -> None:  # type: ignore[no-untyped-def]
    assert client_as(app, "ada").get("/exchanges/pending-for-ada").status_code == 200
    assert client_as(app, "ben").get("/exchanges/pending-for-ada").status_code == 200
    refused = client_as(app, "chen").get("/exchanges/pending-for-ada")
    assert refused.status_code == 403 and "Notes on your garden plan" not in text(refused)


def test_only_allowed_actions_are_offered(app) -> None:  # type: ignore[no-untyped-def]
    other_party = text(client_as(app, "ada").get("/exchanges/pending-for-ada"))  # ben recorded it
    assert 'id="acknowledge-form"' in other_party and 'id="dispute-form"' in other_party
    assert 'id="withdraw-form"' not in other_party
    recorder = text(client_as(app, "ben").get("/exchanges/pending-for-ada"))
    assert 'id="withdraw-form"' in recorder and 'id="acknowledge-form"' not in recorder


def test_the_recorder_cannot_acknowledge(app, clients) -> None:  # type: ignore[no-untyped-def]
    ben = client_as(app, "ben")
    token = hidden(text(ben.get("/exchanges/pending-for-ada")), "csrf_token")
    answer = ben.post("/exchanges/pending-for-ada/acknowledge", data={"csrf_token": token})
    assert answer.status_code == 403
    assert clients.ledger.commands == []


def test_circle_alerts_for_leads_and_flows_for_members(app, clients) -> None:  # type: ignore[no-untyped-def]
    lead = text(client_as(app, "lena").get("/circles/garden"))
    assert 'id="alerts"' in lead and "may be over-extended" in lead and 'id="flow-graph"' in lead
    member = text(client_as(app, "ben").get("/circles/garden"))
    assert 'id="alerts"' not in member and 'id="flow-graph"' in member and 'id="participation"' in member
    outsider = text(client_as(app, "omar").get("/circles/garden"))
    assert 'id="participation"' in outsider  # measures are for everyone
    assert 'id="flow-graph"' not in outsider and "shown to the circle\u2019s members and leads" in outsider
    # Balance was asked for the flows for the lead, the pairs alone for the member, nothing for the outsider.
    assert clients.balance.pictures_asked[-3:] == ["flows", "linked", "none"]


def _big_garden(clients):  # type: ignore[no-untyped-def]
    from reciprocity.web.clients.balance import CircleHealth, Flow

    ids = [f"p{i:02d}" for i in range(45)]
    flows = [Flow(giver=ids[i], receiver=ids[(i * 7 + 3) % 45], minutes=10 + i * 5) for i in range(45)]
    flows += [Flow(giver=ids[i], receiver=ids[(i + 1) % 45], minutes=15 + i) for i in range(45)]
    clients.balance.health_overrides["garden"] = CircleHealth(circle_id="garden", name="Garden circle",
                                                              member_count=45, flows=flows)
    return flows


def test_a_big_circles_picture_is_partial_but_its_table_lists_every_flow_by_name(app, clients) -> None:  # type: ignore[no-untyped-def]
    flows = _big_garden(clients)
    page = text(client_as(app, "lena").get("/circles/garden"))  # lena leads garden
    assert len(re.findall(r'<path class="flow"', page)) <= 30
    note = re.search(r'id="flow-graph-note"[^>]*>(.*?)</p>', page, re.S)
    assert note and "the table below lists every flow" in note.group(1)
    table = re.search(r'<table id="flow-table".*?</table>', page, re.S)
    assert table
    rows = re.findall(r'<tr><td data-label="From">(.*?)</td><td data-label="To">(.*?)</td>', table.group(0))
    assert len(rows) == len(flows)
    assert rows == sorted(rows, key=lambda r: (r[0].lower(), r[1].lower()))  # by name, never by amount


def test_a_member_sees_who_is_connected_but_no_amounts_between_others(app, clients) -> None:  # type: ignore[no-untyped-def]
    flows = _big_garden(clients)
    whole = text(client_as(app, "ada").get("/circles/garden"))  # ada is a plain member of garden
    section = re.search(r'<section class="card" aria-labelledby="flows-title" id="flows">.*?</section>', whole, re.S)
    assert section
    page = section.group(0)
    assert 'id="flow-graph"' in page and 'data-weighted="false"' in page
    assert 'id="flow-table"' not in page and '<path class="flow"' not in page
    assert not re.search(r"\d+ (min|h)\b", page) and not re.search(r" gave \S+ \d", page)
    widths = set(re.findall(r'stroke-width="([^"]+)"', page))
    assert widths <= {"1.6"}  # only the nodes' outline: every tie is drawn alike
    ties = {tuple(sorted((f.giver, f.receiver))) for f in flows if f.giver != f.receiver}
    # 45 people and garden's own: a grid, a row per person, a mark in the row of each of a pair's two
    # people, all alike.
    people = {p for tie in ties for p in tie} | {m.id for m in clients.balance.members_by_id.values()
                                                  if "garden" in m.circles}
    rows = re.findall(r'<g class="matrix-row[^"]*"><title>(.*?)</title><text class="name"[^>]*>(.*?)</text>'
                      r'(?:<path class="tie-cells" d="([^"]*)"/>)?</g>', page)
    assert len(rows) == len(people) > 45 and [r[1] for r in rows] == sorted((r[1] for r in rows), key=str.lower)
    assert sum(r[2].count("m") for r in rows) == 2 * len(ties)  # a relative move to each mark
    assert len(set(re.findall(r"h([\d.]+)v", "".join(r[2] for r in rows)))) == 1  # every mark the same size
    assert f'data-ties="{len(ties)}"' in page
    assert clients.balance.pictures_asked[-1] == "linked"  # who with whom alone, never the minutes
    listed = re.findall(r'<li><div class="line"><span class="what">(.*?)</span>', page)
    assert listed == sorted(listed, key=str.lower)
    # Every tie is in the words too, once from each side.
    said = sum(len(m.split(", ")) for m in re.findall(r'<span class="meta">with (.*?)</span>', page))
    assert said == 2 * len(ties)


def test_a_small_circles_members_see_a_ring_of_plain_lines(app, clients) -> None:  # type: ignore[no-untyped-def]
    from reciprocity.web.clients.balance import CircleHealth, Flow

    ids = ["ada", "ben", "chen", "dev", "eve", "fay"]
    flows = [Flow(giver=ids[i], receiver=ids[(i + 1) % 6], minutes=30 * (i + 1)) for i in range(6)]
    flows.append(Flow(giver="ben", receiver="ada", minutes=5))  # the same pair the other way: still one line
    clients.balance.health_overrides["garden"] = CircleHealth(circle_id="garden", name="Garden circle",
                                                              member_count=6, flows=flows)
    page = text(client_as(app, "ada").get("/circles/garden"))
    assert 'id="flow-graph"' in page and "matrix-row" not in page
    assert len(re.findall(r'<path class="tie"', page)) == 6
    assert not re.search(r"\d+ (min|h)\b", page)


def test_small_circles_keep_their_measures_private(app) -> None:  # type: ignore[no-untyped-def]
    page = text(client_as(app, "omar").get("/circles/kitchen"))
    assert "not shown for circles under 5 members" in page
    assert 'id="participation"' not in page
    assert "you still receive alerts" in page  # omar leads kitchen
