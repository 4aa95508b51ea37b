"""(d) of `make bench`, or `python -m bench.pages`: what a page costs at 10k and at 1M exchanges.

Two read models of the generated organisation (2,000 members, 60 circles; bench/workload.py), one with
10,000 exchanges and one with 1,000,000, are built straight through the projection's own pure projector
and row writer (no Kafka, no decoding: that is (b)'s business), with a realistic mix of lifecycles
(about 60% acknowledged, some of them shared on the wall, 5% disputed, 3% withdrawn, the rest waiting).
Each gets a balance read API and a web process; the pages (dashboard, history, people, a circle page,
the wall) and balance's summary, relationships and circle health are then requested in turn from both,
interleaved (so a noisy neighbour on a shared machine weighs on both alike), signed in as 20 members.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from reciprocity.web.pages_me import PEOPLE_PAGE

from .stack import REPO, free_port, wait_until_up
from .stats import percentile
from .workload import Organisation

WEB_PAGES = ("dashboard /", "history /exchanges", "people", "circle page", "wall")
API_CALLS = ("balance summary", "balance relationships", "balance circle health")
TOKEN = "bench-balance-token"
PASSWORD = "bench-pages-password"
# Requests per page and size. The nearest-rank p99 of n answers is the ceil(0.99 n)-th fastest: of 100,
# the second-slowest, so two answers held up by something outside the page (another process on the
# shared cores, a stolen time slice, a collection) decide it; of 300, the fourth-slowest, so it takes four.
# A stall lands on an answer by chance, and the ratio compares two such maxima: more answers make each
# p99 a measure of the page's tail rather than of one or two stalls. 300 keeps a run at about a minute
# and a half with the read models cached (about 30 s with 100).
REQUESTS_PER_PAGE = 300


@dataclass(frozen=True)
class _Env:
    """What the projector reads of an envelope."""

    event_id: uuid.UUID
    type: str
    occurred_at: datetime


def build_read_model(database_url: str, n: int, *, seed: int = 42, chunk: int = 50_000,
                     progress=None) -> float:  # type: ignore[no-untyped-def]
    """Fill a fresh balance database with the organisation and `n` exchanges; returns seconds taken."""
    from reciprocity.balance.db import make_engine, migrate
    from reciprocity.balance.projection import BalanceProjection
    from reciprocity.balance.projector import project
    from reciprocity.contracts.events import ExchangeAcknowledged, ExchangeDisputed, ExchangeWithdrawn
    from reciprocity.contracts.sealed import Sealed

    began = time.perf_counter()
    engine = make_engine(database_url)
    migrate(engine)
    projection = BalanceProjection(engine)
    org = Organisation(seed=seed)
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    start = now - timedelta(days=365)

    def env(event, at: datetime) -> _Env:  # type: ignore[no-untyped-def]
        return _Env(uuid.UUID(int=rnd.getrandbits(128), version=4), event.TYPE, at)

    def write(items: list) -> None:  # type: ignore[type-arg]
        deltas = project(items, {})
        with engine.begin() as conn:
            projection.write(conn, 1, deltas)

    write([(env(e, start), e) for e in org.directory()])
    facts_fields = set(ExchangeWithdrawn.model_fields) - {"by"}
    done = 0
    exchanges = org.exchanges(n)
    while done < n:
        items = []
        for x in (next(exchanges) for _ in range(min(chunk, n - done))):
            day = datetime.combine(x.occurred_on, datetime.min.time(), UTC) + timedelta(hours=rnd.randint(7, 18))
            x = x.model_copy(update={"shared": rnd.random() < 0.5})
            items.append((env(x, day), x))
            facts = {k: getattr(x, k) for k in facts_fields}
            other = x.receiver if x.recorded_by == x.giver else x.giver
            roll = rnd.random()
            later = day + timedelta(hours=rnd.randint(1, 72))
            if roll < 0.60:
                pair = [x.giver, x.receiver]  # clear values, as a projection holds them opened
                e = ExchangeAcknowledged.model_construct(**facts, by=other, thanks=Sealed.clear("thank you", pair),
                                                         shared=rnd.random() < 0.5)
            elif roll < 0.65:
                e = ExchangeDisputed.model_construct(**facts, by=other,
                                                     reason=Sealed.clear("not as I remember it", [x.giver, x.receiver]))
            elif roll < 0.68:
                e = ExchangeWithdrawn.model_construct(**facts, by=x.recorded_by)
            else:
                continue
            items.append((env(e, min(later, now)), e))
        write(items)
        done += min(chunk, n - done)
        if progress:
            progress(done, n)
    engine.dispose()
    return time.perf_counter() - began


# --- the processes -------------------------------------------------------------------------------


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path, ready: str) -> Iterator[None]:
    with log.open("w") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    try:
        def died() -> str | None:
            return None if proc.poll() is None else f"{ready} exited:\n{log.read_text()[-3000:]}"

        wait_until_up(ready, died, 120)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Site:
    label: str
    web: str
    balance: str
    sessions: dict[str, requests.Session]


@contextmanager
def serve(label: str, database_url: str, workdir: Path, members: Sequence[str]) -> Iterator[Site]:
    """The read API over `database_url` (no consumer: nothing is appended meanwhile) and a web in front."""
    from reciprocity.web.accounts import set_password

    py = str(REPO / ".venv" / "bin" / "python")
    base = {**os.environ, "RECIPROCITY_ENV": "development", "BALANCE_TOKEN": TOKEN, "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1"}
    b_port, w_port = free_port(), free_port()
    web_db = f"sqlite:///{workdir}/web-{label}.db"
    for m in members:
        set_password(web_db, m, PASSWORD)
    with ExitStack() as stack:
        stack.enter_context(_process([py, "-m", "bench.serve_balance", database_url, str(b_port)],
                                     {**base, "PYTHONPATH": str(REPO)}, workdir / f"balance-{label}.log",
                                     f"http://127.0.0.1:{b_port}/health"))
        stack.enter_context(_process([py, "-m", "reciprocity.web.app"], {
            **base, "PORT": str(w_port), "DATABASE_URL": web_db, "BALANCE_URL": f"http://127.0.0.1:{b_port}",
            "LEDGER_URL": f"http://127.0.0.1:{free_port()}", "NOTIFY_URL": f"http://127.0.0.1:{free_port()}",
            "WEB_LOGIN_ATTEMPTS": "1000"}, workdir / f"web-{label}.log", f"http://127.0.0.1:{w_port}/signin"))
        web = f"http://127.0.0.1:{w_port}"
        sessions = {}
        for m in members:
            s = requests.Session()
            page = s.get(web + "/signin", timeout=30)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            answer = s.post(web + "/signin", data={"csrf_token": token.group(1) if token else "", "member_id": m,
                                                    "password": PASSWORD, "next": "/"},
                            allow_redirects=False, timeout=60)
            if answer.status_code not in (302, 303) or "/signin" in answer.headers.get("Location", ""):
                raise RuntimeError(f"{m} could not sign in to the {label} web: {answer.status_code}")
            sessions[m] = s
        yield Site(label, web, f"http://127.0.0.1:{b_port}", sessions)


def _one(site: Site, page: str, member: str, circle: str) -> float:
    s = site.sessions[member]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    path = {"dashboard /": "/", "history /exchanges": "/exchanges", "people": "/people",
            "circle page": f"/circles/{circle}", "wall": "/wall"}.get(page)
    began = time.perf_counter()
    try:
        answer = _get(site, s, page, path, member, circle, auth)
    except requests.ConnectionError:
        # gunicorn closes a kept-alive connection after `keepalive` seconds idle; a request sent on it
        # just then finds it closed (on busy cores a gap between two requests to one site can be that
        # long). That is the client's stale connection, not a page served: ask again, timing the answer.
        began = time.perf_counter()
        answer = _get(site, s, page, path, member, circle, auth)
    seconds = time.perf_counter() - began
    if answer.status_code != 200:
        raise RuntimeError(f"{site.label} {page} for {member}: {answer.status_code} {answer.text[:300]}")
    return seconds


def _get(site: Site, s: requests.Session, page: str, path: str | None, member: str, circle: str,
         auth: dict[str, str]) -> requests.Response:
    if path is not None:
        answer = s.get(site.web + path, allow_redirects=False, timeout=30)
    else:
        api = {"balance summary": f"/v1/members/{member}/summary?window=28d",
               # As the people page asks: a page of people by name (the whole list grows with history).
               "balance relationships": f"/v1/members/{member}/relationships?window=90d&limit={PEOPLE_PAGE}",
               # As a member's circle page asks: the measures and the pairs who exchanged.
               "balance circle health": f"/v1/circles/{circle}/health?window=28d&picture=linked"}[page]
        answer = requests.get(site.balance + api, headers=auth, timeout=30)
    return answer


def measure(sites: Sequence[Site], members: Sequence[tuple[str, str]], requests_per_page: int,
            ) -> dict[str, dict[str, list[float]]]:
    """Per page, per site: latencies, the sites interleaved request by request."""
    found: dict[str, dict[str, list[float]]] = {p: {s.label: [] for s in sites} for p in (*WEB_PAGES, *API_CALLS)}
    for page in found:
        for site in sites:  # warm up: first requests open connections and fill caches
            _one(site, page, *members[0])
        for i in range(requests_per_page):
            member, circle = members[i % len(members)]
            for site in sites if i % 2 == 0 else reversed(sites):
                found[page][site.label].append(_one(site, page, member, circle))
    return found


CACHE = REPO / "var" / "bench"


def cached_read_model(n: int, seed: int = 42) -> Path:
    """Where the read model of `n` exchanges is kept for reuse: building a million rows through the
    projection takes minutes (20 on two busy cores), and it is the pages that are measured, not the
    build. Keyed by what makes it differ: size, seed, the schema's newest migration and the day (the
    generated dates count back from today, and windows from today)."""
    from reciprocity.balance.db import MIGRATIONS_DIR

    head = max(p.stem.split("_")[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE / f"pages-{n}-{seed}-{head}-{datetime.now(UTC).date().isoformat()}.db"


def run(workdir: Path, small: int = 10_000, large: int = 1_000_000,
        requests_per_page: int = REQUESTS_PER_PAGE, progress=print) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    """Rows (page, p50/p99 small, p50/p99 large, p99 ratio)."""
    org = Organisation()
    rnd = random.Random(7)
    chosen = rnd.sample(org.members, 20)
    members = [(m, org.circles_of[m][0]) for m in chosen]
    urls = {}
    for label, n in (("small", small), ("large", large)):
        path = cached_read_model(n)
        if path.exists():
            progress(f"(d) read model with {n:,} exchanges: built earlier today, {path}")
        else:
            partial = path.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            seconds = build_read_model(f"sqlite:///{partial}", n,
                                       progress=lambda d, t, lb=label: progress(f"  {lb}: {d:,}/{t:,}"))
            partial.rename(path)
            progress(f"(d) read model with {n:,} exchanges built in {seconds:,.0f} s: {path}")
        urls[label] = f"sqlite:///{path}"
    with ExitStack() as stack:
        sites = [stack.enter_context(serve(label, url, workdir, chosen)) for label, url in urls.items()]
        found = measure(sites, members, requests_per_page)
    rows = []
    for page, by_site in found.items():
        s, big = by_site["small"], by_site["large"]
        rows.append((page, f"{statistics.median(s) * 1000:.1f} / {percentile(s, 99) * 1000:.1f} ms",
                     f"{statistics.median(big) * 1000:.1f} / {percentile(big, 99) * 1000:.1f} ms",
                     f"{percentile(big, 99) / percentile(s, 99):.2f}"))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_PAGE, help="requests per page and size")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reciprocity-pages-") as tmp:
        rows = run(Path(tmp), args.small, args.large, args.requests)
    print(f"{'page or API':28s} {args.small:>12,} p50/p99   {args.large:>12,} p50/p99   p99 ratio")
    for page, small, large, ratio in rows:
        print(f"{page:28s} {small:>22s} {large:>22s} {ratio:>10s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
