"""The local mail sink: an SMTP server (aiosmtpd) that keeps every message it accepts in a maildir.

`make run` starts it on port 1025 so alerts can be read under var/mail without a real mail server:

    python -m devstack.mail_sink --maildir var/mail --port 1025 [--host 127.0.0.1]

Tests use `MailSink` directly: it can refuse given recipients with a permanent 550 (a bad address),
go down (stop listening: connections are refused) and come back up on the same port, and hold each
message for a while before answering (to kill a sender in the middle of a stream).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import logging
import mailbox
import re
import signal
import ssl
import threading
import warnings
from collections.abc import Iterable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devstack.ports import free_port
from devstack.processes import LocalServer

log = logging.getLogger(__name__)


class _Handler:
    """aiosmtpd handler: refuse some recipients, store the rest in the maildir."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self._sink.refused:
            return f"550 5.1.1 <{address}>: mailbox unavailable (refused by the test sink)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._sink.delay_s:
            await asyncio.sleep(self._sink.delay_s)
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        # Like aiosmtpd's Mailbox handler: say who it was for, as Bcc recipients are not in the headers.
        trace = (
            f"X-Peer: {session.peer[0] if session.peer else '?'}\r\n"
            f"X-MailFrom: {envelope.mail_from}\r\n"
            f"X-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        self._sink.store(trace + raw)
        log.info("stored a message from %s to %s", envelope.mail_from, ", ".join(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class MailSink(LocalServer):
    """An SMTP server on `host:port` writing every accepted message to `maildir` (mailbox.Maildir)."""

    def __init__(
        self,
        maildir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        refuse: Iterable[str] = (),
        delay_s: float = 0.0,
        credentials: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.maildir_path = Path(maildir)
        self.host = host
        self.port = port or free_port(host)
        self.refused: set[str] = {a.lower() for a in refuse}
        self.delay_s = delay_s
        self.credentials = credentials  # when set, AUTH (PLAIN/LOGIN, no TLS needed locally) is required
        # With a server context: STARTTLS required before anything else, or TLS from the first byte.
        self.tls = tls
        self.implicit_tls = implicit_tls
        self._controller: Controller | None = None
        self._lock = threading.Lock()
        # `make run` creates var/mail empty beforehand; Maildir(create=True) only fills in a missing path.
        for sub in ("tmp", "new", "cur"):
            (self.maildir_path / sub).mkdir(parents=True, exist_ok=True)
        self._maildir = mailbox.Maildir(self.maildir_path, create=True)

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> MailSink:
        if self._controller is None:
            # A stopped Controller has closed its event loop: every start needs a new one.
            options: dict[str, Any] = {}
            if self.tls is not None and self.implicit_tls:
                options["ssl_context"] = self.tls
            elif self.tls is not None:
                options.update(tls_context=self.tls, require_starttls=True)
            if self.credentials is not None:
                if self.tls is None or self.implicit_tls:
                    # Plain AUTH over an unencrypted local socket is fine for a sink on 127.0.0.1; over
                    # implicit TLS aiosmtpd warns although the session is encrypted.
                    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
                # With implicit TLS the whole session is encrypted, but aiosmtpd only counts STARTTLS
                # as TLS: requiring it there would hide AUTH altogether.
                options.update(authenticator=self._authenticate, auth_required=True,
                               auth_require_tls=self.tls is not None and not self.implicit_tls)
            controller = Controller(_Handler(self), hostname=self.host, port=self.port, ready_timeout=10, **options)
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # "Down" is simply not listening: a client's connect is refused, as with a crashed mail server.
    down = stop
    up = start

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        # handled=False: aiosmtpd answers 235 or 535 itself
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=self.credentials is not None and given == self.credentials, handled=False)

    def refuse(self, *addresses: str) -> None:
        self.refused.update(a.lower() for a in addresses)

    # --- the mailbox -----------------------------------------------------------------------

    def store(self, raw: bytes) -> None:
        with self._lock:
            self._maildir.add(raw)

    def messages(self) -> list[EmailMessage]:
        """Every stored message, parsed with the modern email API, oldest first."""
        with self._lock:
            keys = sorted(self._maildir.keys(), key=_arrival)
            raws = [self._maildir.get_bytes(k) for k in keys]
        return [email.message_from_bytes(r, policy=email.policy.default) for r in raws]  # type: ignore[misc]


def _arrival(key: str) -> tuple[int, int, int]:
    """Maildir names start with "<seconds>.M<microseconds>P<pid>Q<counter>": sort by arrival."""
    match = re.match(r"(\d+)\.M(\d+)P\d+Q(\d+)", key)
    return (int(match[1]), int(match[2]), int(match[3])) if match else (0, 0, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local SMTP sink: keeps every message in a maildir.")
    parser.add_argument("--maildir", default="var/mail", help="maildir to write to (created if missing)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mail %(levelname)s %(message)s")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with MailSink(args.maildir, host=args.host, port=args.port):
        log.info("SMTP sink on %s:%d, writing to %s", args.host, args.port, Path(args.maildir).resolve())
        stop.wait()
    log.info("SMTP sink stopped")


if __name__ == "__main__":
    main()
