"""What `make deploy-check` checks once compose is up and healthy, run inside the compose network (from
the project's image, so it reaches the internal APIs by service name as the web does):

1. every HTTP API answers from gunicorn (`Server: gunicorn`, a HEAD request like `curl -sI`);
2. a circle, its lead and three members registered, and exchanges recorded, through the ledger's API;
3. balance's summaries equal what was recorded, with two projector processes sharing the partitions
   (the exchanges land on several partitions, so both projectors have applied some);
4. the giver signs in to the web (two gunicorn workers) and her dashboard shows the exchange, the same
   page whichever worker answers;
5. the giver is over-extended (300 minutes given, nothing received): the lead's alert email arrives at
   the SMTP sink inside the compose network.

Exits non-zero with the reason at the first thing that does not hold. Standard library + requests only.
"""

from __future__ import annotations

import email
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

LEDGER, BALANCE, NOTIFY, WEB = "http://ledger:8001", "http://balance:8002", "http://notify:8003", "http://web:8000"
MAILDIR = Path(os.environ.get("CHECK_MAILDIR", "/mail"))
PASSWORD = "deploy-check-" + uuid.uuid4().hex[:12]


def step(message: str) -> None:
    print(f"[deploy-check] {message}", flush=True)


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float = 120, interval_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except requests.RequestException as err:
            last = repr(err)
        else:
            if last:
                return last
        time.sleep(interval_s)
    sys.exit(f"[deploy-check] FAILED: {what} within {timeout_s:.0f}s (last: {str(last)[:500]})")


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ[name]}"}


def command(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.request(method, LEDGER + path, json=body, timeout=30,
                              headers={**bearer("LEDGER_TOKEN"), "Idempotency-Key": str(uuid.uuid4())})
    if answer.status_code not in (200, 201):
        sys.exit(f"[deploy-check] FAILED: {method} {path}: {answer.status_code} {answer.text[:500]}")
    return answer.json()


def balance(path: str) -> Any:
    answer = requests.get(BALANCE + path, timeout=10, headers=bearer("BALANCE_TOKEN"))
    return answer.json() if answer.status_code == 200 else None


def served_by(url: str) -> str:
    """The Server header of `HEAD /health`. Asked until it answers: healthy by podman's probe, a gunicorn
    worker booted a moment ago on a busy machine (a dozen containers starting on two cores) has been
    seen to take longer than one request's 10 s to answer its first."""
    answer = wait_for(f"HEAD {url}/health answered", lambda: requests.head(url + "/health", timeout=10), 90)
    return str(answer.headers.get("Server", ""))


def main() -> None:
    servers = {url: served_by(url) for url in (LEDGER, BALANCE, NOTIFY, WEB)}
    for url, server in servers.items():
        step(f"HEAD {url}/health -> Server: {server}")
    if set(servers.values()) != {"gunicorn"}:
        sys.exit(f"[deploy-check] FAILED: not every API is served by gunicorn: {servers}")

    run = uuid.uuid4().hex[:6]
    circle, lead, giver = f"check-{run}", f"lead-{run}", f"giver-{run}"
    receivers = [f"recv{i}-{run}" for i in range(3)]
    giver_name = f"Gia Check {run}"
    command("POST", "/v1/circles", {"id": circle, "name": f"Check circle {run}"})
    for member_id, name in [(lead, f"Lea Check {run}"), (giver, giver_name),
                            *[(r, f"Ray {i} Check {run}") for i, r in enumerate(receivers)]]:
        command("POST", "/v1/members", {"id": member_id, "name": name, "email": f"{member_id}@example.org",
                                        "circles": [circle], "role": "member"})
    command("PUT", f"/v1/circles/{circle}/leads", {"leads": [lead]})
    step(f"registered circle {circle}, lead {lead}, giver {giver}, receivers {', '.join(receivers)}")

    today = datetime.now(UTC).date().isoformat()
    appended = []
    for i, minutes in enumerate([60, 45, 75, 50, 70]):  # 300 minutes given, nothing received
        receiver = receivers[i % len(receivers)]
        answer = command("POST", "/v1/exchanges", {
            "giver": giver, "receiver": receiver, "kind": "mentoring", "minutes": minutes,
            "note": f"deploy check {i}", "occurred_on": today, "recorded_by": giver})
        appended.append((answer["partition"], answer["offset"]))
    step(f"recorded 5 exchanges (300 minutes) through the ledger, on partitions {sorted({p for p, _ in appended})}")

    def summary_matches() -> bool:
        found = balance(f"/v1/members/{giver}/summary")
        return bool(found) and found["given"]["pending_minutes"] == 300 and found["given"]["pending_count"] == 5

    wait_for("balance's summary to show the 300 minutes given", summary_matches)
    for i, receiver in enumerate(receivers):
        expected = sum(m for j, m in enumerate([60, 45, 75, 50, 70]) if j % len(receivers) == i)
        wait_for(f"{receiver}'s summary", lambda r=receiver, e=expected: (
            (balance(f"/v1/members/{r}/summary") or {}).get("received", {}).get("pending_minutes") == e))
    status = balance("/v1/projection/status")
    lagging = [p for p in status["partitions"] if p["lag"] not in (0, None)]
    step(f"balance: giver 300 minutes given (pending), each receiver what was recorded; partitions with lag: "
         f"{lagging or 'none'}")

    from reciprocity.web.accounts import set_password  # the image's package: passwords never travel as events

    set_password(os.environ["DATABASE_URL"], giver, PASSWORD)
    session = requests.Session()
    page = session.get(WEB + "/signin", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if not token:
        sys.exit("[deploy-check] FAILED: no CSRF token on the sign-in page")
    signed_in = session.post(WEB + "/signin", timeout=10, data={
        "csrf_token": token.group(1), "member_id": giver, "password": PASSWORD})
    if signed_in.status_code != 200 or giver_name not in signed_in.text:
        sys.exit(f"[deploy-check] FAILED: sign-in: {signed_in.status_code} {signed_in.text[:300]}")

    def dashboard() -> str:
        answer = session.get(WEB + "/", timeout=10)
        answer.raise_for_status()
        # The part that varies by request only: the CSRF token.
        return re.sub(r'(name="csrf_token" value=|"X-CSRFToken": ?)"[^"]+"', r'\1"-"', answer.text)

    first = wait_for("the dashboard to show the exchange", lambda: (lambda text: text if (
        "Ray 0 Check" in text) else None)(dashboard()))
    pages = {dashboard() for _ in range(6)}
    if len(pages) != 1:
        sys.exit("[deploy-check] FAILED: the web's workers gave different dashboards for the same member")
    step(f"web: {giver} signed in; the dashboard names the receiver; 6 more loads (2 gunicorn workers) "
         f"gave the same page ({len(first)} bytes)")

    def alert_mail() -> str | None:
        for path in sorted((MAILDIR / "new").glob("*")):
            message = email.message_from_bytes(path.read_bytes())
            if f"{lead}@example.org" in message.get("To", "") and giver_name in message.get("Subject", ""):
                return " ".join(f"To: {message['To']} | Subject: {message['Subject']}".split())
        return None

    found = wait_for("the over-extension alert email at the SMTP sink", alert_mail, timeout_s=180)
    step(f"mail sink: {found}")
    step("OK")


if __name__ == "__main__":
    main()
