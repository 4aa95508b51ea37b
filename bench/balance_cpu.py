"""`python -m bench.balance_cpu`: balance's read API's own CPU per request, in process.

Under load the stack is capped by the server CPU each request costs (README, Figures (e)), and on a
shared machine wall-clock figures mostly measure the neighbours. This loop asks balance's read API (the
Flask app, through its test client: routing, the bearer-token check, the queries and JSON, no HTTP
server) for the calls the web's pages make, over the 10,000-exchange read model of bench/pages.py, and
reports the process CPU time (not wall clock) per request, per call and in all.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Sequence

from .pages import build_read_model, cached_read_model
from .workload import Organisation

TOKEN = "bench-balance-token"
CALLS = {
    "dashboard": "/v1/members/{m}/dashboard",
    "summary": "/v1/members/{m}/summary",
    "relationships": "/v1/members/{m}/relationships?limit=50",
    "directory member": "/v1/directory/members/{m}",
}


def read_model_url(n: int) -> str:
    path = cached_read_model(n)
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        build_read_model(f"sqlite:///{partial}", n)
        partial.rename(path)
    return f"sqlite:///{path}"


def measure(database_url: str, requests: int, members: int = 20) -> dict[str, float]:
    """µs of process CPU per request, per call (and "all"), over `requests` requests in turn."""
    os.environ.setdefault("BALANCE_TOKEN", TOKEN)
    from reciprocity.balance.app import create_app
    from reciprocity.balance.db import make_engine

    app = create_app(engine=make_engine(database_url, immediate=False))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {os.environ['BALANCE_TOKEN']}"}
    chosen = random.Random(7).sample(Organisation().members, members)
    plan = [(name, path.format(m=m)) for m in chosen for name, path in CALLS.items()]
    for _, path in plan:  # warm: caches, compiled statements, the pool
        assert client.get(path, headers=headers).status_code == 200, path
    spent = dict.fromkeys(CALLS, 0.0)
    count = dict.fromkeys(CALLS, 0)
    for i in range(requests):
        name, path = plan[i % len(plan)]
        began = time.process_time()
        status = client.get(path, headers=headers).status_code
        spent[name] += time.process_time() - began
        count[name] += 1
        assert status == 200, (path, status)
    per_call = {name: spent[name] / count[name] * 1e6 for name in CALLS if count[name]}
    per_call["all"] = sum(spent.values()) / requests * 1e6
    return per_call


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.balance_cpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exchanges", type=int, default=10_000, help="size of the read model")
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args(argv)
    found = measure(read_model_url(args.exchanges), args.requests)
    print(f"balance read API, CPU per request over {args.requests:,} requests "
          f"({args.exchanges:,} exchanges):")
    for name, us in found.items():
        print(f"  {name:18s} {us:8.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
