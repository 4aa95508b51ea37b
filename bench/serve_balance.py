"""`python -m bench.serve_balance DATABASE_URL PORT`: balance's read API alone over a database built
beforehand (bench/pages.py), with no consumer: the figures are those of reading, nothing else."""

from __future__ import annotations

import os
import sys

from reciprocity.balance.app import create_app
from reciprocity.balance.db import make_engine
from werkzeug.serving import make_server


def main() -> int:
    database_url, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("BALANCE_TOKEN", "bench-balance-token")
    app = create_app(engine=make_engine(database_url, immediate=False))
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
