"""(e) of `make bench`, or `python -m bench.load`: the web under load, every demo member at once.

One thread per member, each from its own loopback address (127.0.0.x: the sign-in throttle is per
address, and a harness whose members share one would be throttled, and look fast, after ten
sign-ins). Each signs in, then loops without pause, for `--seconds`: dashboard, people, one of its
circles, its history, the wall; every third loop it opens the record form and records an exchange
with another member, and whenever its dashboard shows one waiting for it, it opens and acknowledges
it. Requests/s overall; p50/p99 and errors per page. An error is any answer but the page (or the
redirect a form answers with), a timeout, or a redirect to the sign-in page (a member sent back to
sign in was not served).

Without --web-url it starts the stack from the Procfile (bench/stack.py) on the broker given by
KAFKA_BOOTSTRAP_SERVERS and seeds the demo organisation, as `make run` does.
"""

from __future__ import annotations

import argparse
import html
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .stats import percentile

CLIENT_TIMEOUT_S = 10.0
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
_PENDING = re.compile(r'id="pending-list">(.*?)</ul>', re.S)
_EXCHANGE_LINK = re.compile(r'href="/exchanges/(x-[0-9a-f]{16})')


class SourceAddressAdapter(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__(pool_connections=1, pool_maxsize=2)

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["source_address"] = (self._address, 0)
        return super().init_poolmanager(*args, **kwargs)


@dataclass
class Results:
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, page: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.samples[page].append(seconds)
            if error:
                self.errors[page].append(error)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.samples.values())

    @property
    def error_count(self) -> int:
        return sum(len(v) for v in self.errors.values())


class Member(threading.Thread):
    def __init__(self, base: str, member_id: str, password: str, circles: list[str], others: list[str],
                 address: str, results: Results, start_at: float, stop_at: float, record_every: int = 3,
                 signed_in: Callable[[], None] = lambda: None) -> None:
        super().__init__(daemon=True, name=f"load-{member_id}")
        self.base, self.member_id, self.password = base, member_id, password
        self.circles, self.others = circles, others
        self.results, self.start_at, self.stop_at, self.record_every = results, start_at, stop_at, record_every
        self.http = requests.Session()
        self.http.trust_env = False  # no proxy, netrc or CA lookups in the environment on every request
        self.http.mount("http://", SourceAddressAdapter(address))
        self.rnd = random.Random(member_id)
        self.signed_in = signed_in  # called once this member is past signing in (in, or refused)

    def _call(self, page: str, method: str, path: str, *, form: dict | None = None, expect: tuple[int, ...] = (200,),
              ) -> requests.Response | None:
        began = time.perf_counter()
        try:
            answer = self.http.request(method, self.base + path, data=form, allow_redirects=False,
                                       timeout=CLIENT_TIMEOUT_S)
        except requests.RequestException as err:
            self.results.add(page, time.perf_counter() - began, f"{type(err).__name__}")
            return None
        seconds = time.perf_counter() - began
        location = answer.headers.get("Location", "")
        error = None
        if "/signin" in location and page != "sign-in":
            error = "sent to sign in"
        elif answer.status_code not in expect:
            error = f"HTTP {answer.status_code}"
        self.results.add(page, seconds, error)
        return None if error else answer

    def run(self) -> None:
        time.sleep(max(0.0, self.start_at - time.monotonic()))
        page = self._call("sign-in form", "GET", "/signin")
        token = _token(page)
        answer = self._call("sign-in", "POST", "/signin", expect=(302, 303),
                            form={"csrf_token": token, "member_id": self.member_id, "password": self.password,
                                  "next": "/"})
        self.signed_in()
        if answer is None or "/signin" in answer.headers.get("Location", ""):
            if answer is not None:
                self.results.add("sign-in", 0.0, "refused")
            return
        loop = 0
        while time.monotonic() < self.stop_at:
            loop += 1
            dashboard = self._call("dashboard /", "GET", "/")
            self._call("people", "GET", "/people")
            if self.circles:
                self._call("circle page", "GET", f"/circles/{self.rnd.choice(self.circles)}")
            self._call("history /exchanges", "GET", "/exchanges")
            self._call("wall", "GET", "/wall")
            if dashboard is not None:
                self._acknowledge_one(dashboard.text)
            if loop % self.record_every == 0 and self.others:
                self._record()

    def _record(self) -> None:
        form_page = self._call("record form", "GET", "/exchanges/new")
        if form_page is None:
            return
        other = self.rnd.choice(self.others)
        self._call("record (POST)", "POST", "/exchanges/new", expect=(303,), form={
            "csrf_token": _token(form_page), "idempotency_key": _first(_KEY, form_page.text) or uuid.uuid4().hex,
            "direction": "gave", "other": other, "kind": self.rnd.choice(["help", "feedback", "care", "knowledge"]),
            "minutes": str(self.rnd.randint(5, 90)), "occurred_on": time.strftime("%Y-%m-%d", time.gmtime()),
            "note": "load test",
        })

    def _acknowledge_one(self, dashboard: str) -> None:
        pending = _PENDING.search(dashboard)
        ids = _EXCHANGE_LINK.findall(pending.group(1)) if pending else []
        if not ids:
            return
        exchange_id = ids[0]
        detail = self._call("exchange page", "GET", f"/exchanges/{exchange_id}")
        if detail is None or 'id="acknowledge-form"' not in detail.text:
            return
        form = detail.text[detail.text.index('id="acknowledge-form"'):]
        self._call("acknowledge (POST)", "POST", f"/exchanges/{exchange_id}/acknowledge", expect=(303,), form={
            "csrf_token": _token(detail), "idempotency_key": _first(_KEY, form) or uuid.uuid4().hex,
            "thanks": "thank you", "shared": "on"})


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return html.unescape(found.group(1)) if found else None


def _token(answer: requests.Response | None) -> str:
    return (_first(_CSRF, answer.text) if answer is not None else None) or ""


def members_of(balance_url: str) -> list[tuple[str, list[str]]]:
    headers = {"Authorization": f"Bearer {os.environ.get('BALANCE_TOKEN', 'bench-balance-token')}"}
    answer = requests.get(balance_url + "/v1/directory/members", headers=headers, timeout=30)
    answer.raise_for_status()
    return [(m["id"], m["circles"]) for m in answer.json()["members"] if m.get("role") != "operator"]


def wait_caught_up(balance_url: str, timeout_s: float = 180) -> list[tuple[str, list[str]]]:
    """The members, once balance has projected everything the log holds (the seed included)."""
    headers = {"Authorization": f"Bearer {os.environ.get('BALANCE_TOKEN', 'bench-balance-token')}"}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status = requests.get(balance_url + "/v1/projection/status", headers=headers, timeout=10).json()
            lags = [p.get("lag") for p in status.get("partitions", [])]
            if lags and all(lag == 0 for lag in lags):
                return members_of(balance_url)
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"balance did not catch up with the log in {timeout_s:.0f} s")


def run_load(web_url: str, people: list[tuple[str, list[str]]], password: str, seconds: float,
             ramp_s: float = 1.0, all_signed_in: Callable[[int], None] = lambda requests: None,
             ) -> tuple[Results, float]:
    """Every member at once; `all_signed_in(requests so far)` is called when the last is past sign-in."""
    results = Results()
    ids = [m for m, _ in people]
    now = time.monotonic()
    start_at = now + 0.5
    stop_at = start_at + ramp_s + seconds
    waiting = [len(people)]
    lock = threading.Lock()

    def one_signed_in() -> None:
        with lock:
            waiting[0] -= 1
            if waiting[0] == 0:
                all_signed_in(results.requests)

    threads = [Member(web_url, member_id, password, circles, [o for o in ids if o != member_id],
                      f"127.0.0.{2 + i}", results, start_at + ramp_s * i / max(len(people), 1), stop_at,
                      signed_in=one_signed_in)
               for i, (member_id, circles) in enumerate(people)]
    for t in threads:
        t.start()
    began = time.monotonic()
    for t in threads:
        t.join(stop_at - time.monotonic() + CLIENT_TIMEOUT_S * 3)
    return results, time.monotonic() - began


def report(results: Results, elapsed: float) -> list[tuple[str, str]]:
    rows = [("members at once", ""), ("requests/s", f"{results.requests / elapsed:,.1f}"),
            ("requests", f"{results.requests:,}"), ("errors (sign-ins included)", f"{results.error_count:,}")]
    for page in sorted(results.samples):
        values = results.samples[page]
        errors = results.errors.get(page, [])
        why = f" ({', '.join(sorted(set(errors))[:3])})" if errors else ""
        rows.append((f"  {page}", f"n={len(values):,} p50 {statistics.median(values) * 1000:,.0f} ms, "
                                  f"p99 {percentile(values, 99) * 1000:,.0f} ms, errors {len(errors)}{why}"))
    return rows


def cpu_rows(server_cpu: dict[str, float], client_cpu: float | None, requests: int, when: str = "",
             ) -> list[tuple[str, str]]:
    """CPU milliseconds per request, by process: on a shared machine the requests/s move with the
    neighbours' load, the CPU each request costs much less, and it says where the time goes."""
    per = max(requests, 1) / 1000
    busy = {name: used for name, used in server_cpu.items() if used / per >= 0.05}
    rows = []
    if server_cpu:
        rows.append((f"CPU per request, server{' ' + when if when else ''}",
                     f"{sum(server_cpu.values()) / per:.1f} ms ({requests:,} requests)"))
    rows += [(f"  {name}", f"{used / per:.1f} ms") for name, used in sorted(busy.items(), key=lambda kv: -kv[1])]
    if client_cpu is not None:
        rows.append(("CPU per request, this client", f"{client_cpu / per:.1f} ms"))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--web-url", help="a running web (with --balance-url); default: start the stack")
    parser.add_argument("--balance-url")
    parser.add_argument("--password", default="reciprocity-demo")
    parser.add_argument("--seconds", type=float, default=90)
    args = parser.parse_args(argv)
    rows, _ = measure(args.seconds, args.password, args.web_url, args.balance_url)
    for name, value in rows:
        print(f"{name:40s} {value}")
    return 0


def measure(seconds: float, password: str = "reciprocity-demo", web_url: str | None = None,
            balance_url: str | None = None) -> tuple[list[tuple[str, str]], dict[str, float]]:
    """The rows to print and the headline figures (requests/s, errors, dashboard p99 in ms)."""
    load_before = os.getloadavg()
    server_cpu: dict[str, float] = {}
    steady_rows: list[tuple[str, str]] = []
    if web_url and balance_url:
        people = members_of(balance_url)
        client_began = time.process_time()
        results, elapsed = run_load(web_url, people, password, seconds)
    else:
        from .stack import procfile_stack

        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
        with tempfile.TemporaryDirectory(prefix="reciprocity-load-") as tmp, \
                procfile_stack(bootstrap, Path(tmp)) as stack:
            people = wait_caught_up(stack.balance)
            cpu_began, client_began = stack.cpu_seconds(), time.process_time()
            steady: dict[str, Any] = {}

            def all_signed_in(requests_so_far: int) -> None:
                steady.update(cpu=stack.cpu_seconds(), requests=requests_so_far)

            results, elapsed = run_load(stack.web, people, password, seconds, all_signed_in=all_signed_in)
            cpu_ended = stack.cpu_seconds()
            server_cpu = {name: used - cpu_began.get(name, 0.0) for name, used in cpu_ended.items()}
            if steady:  # the pages alone, once the burst of sign-ins (Argon2, first renders) is over
                steady_cpu = {name: used - steady["cpu"].get(name, 0.0) for name, used in cpu_ended.items()}
                steady_rows = cpu_rows(steady_cpu, None, results.requests - steady["requests"],
                                       "after the last sign-in")
    client_cpu = time.process_time() - client_began
    rows = report(results, elapsed)
    rows[0] = ("members at once", str(len(people)))
    rows.insert(1, ("load average before / after", f"{load_before[0]:.1f} / {os.getloadavg()[0]:.1f}"))
    rows.extend(cpu_rows(server_cpu, client_cpu, results.requests))
    rows.extend(steady_rows)
    dashboard = results.samples.get("dashboard /", [0.0])
    return rows, {"rps": results.requests / elapsed, "errors": results.error_count,
                  "dashboard_p99_ms": percentile(dashboard, 99) * 1000}


if __name__ == "__main__":
    sys.exit(main())
