"""`python -m reciprocity.common.healthcheck PORT`: exit 0 when http://127.0.0.1:PORT/health answers 200.

The container health check of compose.yaml (the image has no curl); prints the answer on failure, so
`podman inspect`/`docker inspect` shows why a container is unhealthy.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    url = f"http://127.0.0.1:{int(argv[1])}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return 0 if answer.status == 200 else 1
    except urllib.error.HTTPError as err:
        print(f"{url}: {err.code} {err.read()[:500].decode(errors='replace')}")
    except OSError as err:
        print(f"{url}: {err}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
