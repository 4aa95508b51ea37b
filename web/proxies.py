"""The client's address behind reverse proxies, believed only from proxies we were told to trust.

WEB_TRUSTED_PROXIES lists addresses or networks (`10.0.0.5, 192.168.0.0/16`). When the TCP peer is one
of them, werkzeug's ProxyFix takes the client address from X-Forwarded-For (skipping further trusted
proxies in the chain) and the scheme from X-Forwarded-Proto; from any other peer those headers are
ignored, so nobody can pick the address their failed sign-ins are counted against.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(listed: str) -> list[Network]:
    """`10.0.0.5, 192.168.0.0/16` -> networks; raises ValueError naming a bad entry."""
    networks = []
    for entry in listed.replace(";", ",").split(","):
        if entry.strip():
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"WEB_TRUSTED_PROXIES: {entry.strip()!r} is not an IP address or network") from None
    return networks


class TrustedProxies:
    def __init__(self, app: Callable[..., Any], networks: Iterable[Network]) -> None:
        self.app = app
        self.networks = list(networks)
        self._fixes: dict[int, ProxyFix] = {}

    def trusted(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address((address or "").strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def hops(self, environ: dict[str, Any]) -> int:
        """How many proxies in front of us are trusted: the peer, then each trusted address at the right
        end of X-Forwarded-For; the client is the entry just before them."""
        if not self.trusted(environ.get("REMOTE_ADDR")):
            return 0
        forwarded = [a.strip() for a in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        hops = 1
        while hops < len(forwarded) and self.trusted(forwarded[-hops]):
            hops += 1
        return hops if forwarded else 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        hops = self.hops(environ) if self.networks else 0
        if not hops:
            return self.app(environ, start_response)
        if hops not in self._fixes:
            self._fixes[hops] = ProxyFix(self.app, x_for=hops, x_proto=1)
        return self._fixes[hops](environ, start_response)
