"""The web's few seconds' memory of the directory (web/directory.py): fewer round trips to balance per
page, and nothing that must be current read from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from reciprocity.common.service_client import NotFound, Unavailable
from reciprocity.web.directory import DirectoryCache

from tests.support.web_fakes import demo_world, fake_clients, hidden, make_app, sign_in


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_answers_are_remembered_for_the_ttl_then_asked_again() -> None:
    clients = fake_clients()
    demo_world(clients)
    balance, clock = clients.balance, Clock()
    cache = DirectoryCache(balance, ttl_s=2.0, clock=clock)
    assert cache.member("ada").display_name == "Ada Lovelace"
    balance.members_by_id["ada"] = balance.members_by_id["ada"].model_copy(update={"name": "Ada King"})
    clock.now += 1.9
    assert cache.member("ada").display_name == "Ada Lovelace"  # within the TTL: remembered
    assert cache.member("ada", fresh=True).display_name == "Ada King"  # asked now, and remembered from now
    clock.now += 1.0
    assert cache.member("ada").display_name == "Ada King"
    assert balance.calls.count("member") == 2
    clock.now += 2.0
    cache.member("ada")
    assert balance.calls.count("member") == 3
    circles = cache.circles()
    assert cache.circles() == circles and balance.calls.count("circles") == 1
    assert {m.id for m in cache.circle_members(circles[0].id)} == \
        {m.id for m in balance.members(circle=circles[0].id)}


def test_failures_and_unknown_ids_are_never_remembered() -> None:
    clients = fake_clients()
    demo_world(clients)
    balance = clients.balance
    cache = DirectoryCache(balance, ttl_s=60.0, clock=Clock())
    with pytest.raises(NotFound):
        cache.member("newcomer")
    balance.members_by_id["newcomer"] = balance.members_by_id["ada"].model_copy(update={"id": "newcomer"})
    assert cache.member("newcomer").id == "newcomer"  # registered meanwhile: found at once
    balance.down = True
    with pytest.raises(Unavailable):
        cache.circles()
    balance.down = False
    assert cache.circles()


def test_a_ttl_of_zero_asks_every_time() -> None:
    clients = fake_clients()
    demo_world(clients)
    cache = DirectoryCache(clients.balance, ttl_s=0, clock=Clock())
    cache.member("ada")
    cache.member("ada")
    assert clients.balance.calls.count("member") == 2


def test_pages_ask_for_the_signed_in_member_once_per_ttl(tmp_path: Path) -> None:
    clients = fake_clients()
    demo_world(clients)
    app = make_app(f"sqlite:///{tmp_path}/web.db", clients, web_directory_cache_s=60)
    browser = app.test_client()
    assert sign_in(browser, "ada").status_code == 302
    asked: list[str] = []

    class Counting:  # balance as the directory memory sees it (the fake's own pages call member() too)
        def member(self, member_id: str):  # type: ignore[no-untyped-def]
            asked.append(member_id)
            return clients.balance.member(member_id)

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(clients.balance, name)

    app.extensions["reciprocity.directory"].balance = Counting()
    for path in ("/", "/people", "/exchanges", "/wall", "/"):
        assert browser.get(path).status_code == 200, path
    assert asked == ["ada"]


def test_a_removed_operator_role_holds_at_once_for_operations_and_commands(tmp_path: Path) -> None:
    clients = fake_clients()
    demo_world(clients)
    app = make_app(f"sqlite:///{tmp_path}/web.db", clients, web_directory_cache_s=60)
    ops = app.test_client()
    assert sign_in(ops, "ops").status_code == 302
    assert ops.get("/ops").status_code == 200
    page = ops.get("/").get_data(as_text=True)  # remembered from here on, for the pages she opens
    balance = clients.balance
    balance.members_by_id["ops"] = balance.members_by_id["ops"].model_copy(update={"role": "member"})
    assert ops.get("/ops").status_code == 403  # read afresh: the role is gone
    answer = ops.post("/signout", data={"csrf_token": hidden(page, "csrf_token")})
    assert answer.status_code == 302


@pytest.mark.parametrize("exchange_id", ["x-0123456789abcdef", "a.b_c-d", "with space/and?query#frag%"])
def test_list_links_to_an_exchange_are_what_url_for_builds(tmp_path: Path, exchange_id: str) -> None:
    from flask import url_for
    from reciprocity.web.items import exchange_url

    app = make_app(f"sqlite:///{tmp_path}/web.db")
    for root in ("", "/reciprocity"):  # served at the root, or under a prefix by a reverse proxy
        with app.test_request_context("/", environ_base={"SCRIPT_NAME": root}):
            assert exchange_url(exchange_id) == url_for("exchanges.detail", exchange_id=exchange_id)
