"""`make bench` on a small load: every figure it promises comes out (no timing is asserted here)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


# Two minutes on a quiet machine; the whole stack, three databases and the load harness start in it, so a
# busy one takes several times that. The deadline is the subprocess's own, not pytest's default.
@pytest.mark.timeout(600)
def test_bench_prints_every_figure_on_a_small_load(kafka_bootstrap: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--events", "3000", "--requests", "20", "--pages-small", "300",
         "--pages-large", "1000", "--pages-requests", "3", "--load-seconds", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=540,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "COLUMNS": "200", "LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for row in (
        "(a) read only (kafka-python)",
        "(b) projection into SQLite",
        "(b0) SQLite writes alone",
        "(b) projection into PostgreSQL",
        "(b0) PostgreSQL writes alone",
        "(b2) projection into PostgreSQL by 2 balance processes",
        "(c) POST /v1/exchanges -> visible in summary, p50 (20 requests)",
        "(c) ... p99",
        "(e) requests/s under load", "(e) ... errors (sign-ins included)", "(e) ... dashboard p99",
        "dashboard /", "sign-in form",  # (e) per page
        "history /exchanges", "balance relationships", "balance circle health", "p99 ratio",  # (d)
    ):
        assert row in done.stdout, f"{row!r} missing from:\n{done.stdout[-3000:]}"
