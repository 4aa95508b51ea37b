"""The thinnest path through the whole system, for real: an exchange recorded through the ledger's
HTTP API travels through Kafka into balance's read model and shows on the web page."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests

from tests.support.auth import BALANCE_TOKEN, bearer
from tests.support.services import wait_for
from tests.support.stack import PASSWORD, TOKEN, Stack, running_stack


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(kafka_bootstrap, tmp_path_factory.mktemp("skeleton")) as running:
        yield running


def signed_in(stack: Stack, member_id: str) -> requests.Session:
    session = requests.Session()
    form = session.get(stack.url + "/signin", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf, form
    answer = session.post(stack.url + "/signin", timeout=10, allow_redirects=False,
                          data={"csrf_token": csrf.group(1), "member_id": member_id, "password": PASSWORD})
    assert answer.status_code in (302, 303), answer.text
    return session


def people_row(session: requests.Session, stack: Stack, other: str) -> dict[str, int] | None:
    html = session.get(stack.url + "/people", timeout=10).text
    row = re.search(rf'<tr id="person-{re.escape(other)}".*?</tr>', html, re.S)
    if row is None:
        return None
    given = re.search(r'class="num given" data-minutes="(\d+)"', row.group(0))
    received = re.search(r'class="num received" data-minutes="(\d+)"', row.group(0))
    assert given and received, row.group(0)
    return {"given": int(given.group(1)), "received": int(received.group(1))}


def test_an_exchange_recorded_at_the_ledger_reaches_balance_and_the_web_page(stack: Stack, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    circle, ada, bo = f"skel-{suffix}", f"ada-{suffix}", f"bo-{suffix}"
    stack.circle(circle, "Skeleton circle")
    stack.member(ada, "Ada Lovelace", [circle])
    stack.member(bo, "Bo Diddley", [circle])
    stack.wait_for_directory([ada, bo])

    recorded = requests.post(stack.ledger.url + "/v1/exchanges", timeout=15, headers={
        "Authorization": f"Bearer {TOKEN}", "Idempotency-Key": f"skeleton-{suffix}",
    }, json={"giver": ada, "receiver": bo, "kind": "mentoring", "minutes": 45, "note": "pairing on the parser",
             "occurred_on": date.today().isoformat(), "recorded_by": ada})
    assert recorded.status_code == 201, recorded.text
    appended = recorded.json()
    assert appended["topic"] == "ledger.exchanges" and appended["offset"] >= 0

    def summary_of(member: str) -> dict:
        return requests.get(f"{stack.balance.url}/v1/members/{member}/summary?window=28d", timeout=10,
                            headers=bearer(BALANCE_TOKEN)).json()

    # Recorded, not yet acknowledged: pending on both sides, nothing settled.
    giver = wait_for(lambda: (s := summary_of(ada))["given"]["pending_minutes"] == 45 and s, 60,
                     what="the exchange to reach balance")
    assert giver["given"]["minutes"] == 0 and giver["given"]["pending_count"] == 1
    assert summary_of(bo)["received"]["pending_minutes"] == 45

    acknowledged = requests.post(f"{stack.ledger.url}/v1/exchanges/{appended['id']}/acknowledge", timeout=15,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": f"ack-{suffix}"},
                                 json={"by": bo, "thanks": "that unblocked me"})
    assert acknowledged.status_code == 201, acknowledged.text
    settled = wait_for(lambda: (s := summary_of(ada))["given"]["minutes"] == 45 and s, 60,
                       what="the acknowledgement to settle the exchange")
    assert settled["given"]["pending_minutes"] == 0
    assert settled["by_kind"]["mentoring"]["given_minutes"] == 45

    # The page a member sees lists the other party with the minutes that flowed each way.
    ada_web = signed_in(stack, ada)
    assert wait_for(lambda: people_row(ada_web, stack, bo), 30, what="bo on ada's people page") == {
        "given": 45, "received": 0}
    bo_web = signed_in(stack, bo)
    assert people_row(bo_web, stack, ada) == {"given": 0, "received": 45}
