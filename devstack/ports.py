"""Free TCP ports for the servers started on this machine: by tests, the benchmarks and the launchers."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that was free a moment ago: bind to port 0 and let the kernel choose.

    Another process could grab it before the caller binds; on a test machine that is rare enough, and
    servers started on it fail loudly rather than silently sharing.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
