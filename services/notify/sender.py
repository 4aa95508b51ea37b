"""Sending the planned deliveries over SMTP, surviving a mail server that is down or refusing.

The send path of one delivery, and what a crash at each step does:

1. claim: the row gets a short lease (committed), so a second notify instance leaves it alone;
   a crash here only delays the delivery until the lease runs out;
2. SMTP: the message goes to the server;
3. the server accepts it, then the row is marked `sent` (committed).

A crash between 3's acceptance and its commit is the one window in which an alert can be sent twice:
the row is still `pending` and will be sent again. No order of steps closes it, SMTP has no
transaction to join; the window is one SMTP round trip wide, and each message carries a deterministic
Message-ID (`<alert_id.recipient@domain>`) so mail systems and people can spot the repeat.

Failures: a server that cannot be reached, times out, or answers 4xx for the session (or refuses our
credentials or sender address) pauses all sending with exponential backoff (`retry_initial_s`,
doubling, capped at `retry_max_s`) and makes /health say why; a 4xx for one recipient retries that
delivery alone with the same backoff; a 5xx for the recipient or the message (a bad address) is
permanent: the delivery is recorded as `failed` with the server's answer and the others go on.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from ssl import SSLContext
from typing import Any, Literal

import sqlalchemy as sa
from reciprocity.common.db import reading
from sqlalchemy.engine import Engine

from . import metrics
from .rendering import one_line
from .store import deliveries, utcnow

log = logging.getLogger(__name__)

CrashHook = Callable[[str], None]
Scope = Literal["permanent", "retry_delivery", "retry_server"]


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 1025
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    sender: str = "Reciprocity <alerts@reciprocity.local>"
    timeout_s: float = 10.0
    ca_file: str | None = None  # a private CA to trust besides the system's (an internal relay)

    def tls_context(self) -> SSLContext:  # not ssl.SSLContext: `ssl` is a field in here
        # create_default_context(cafile=...) would trust that file only; the system's CAs stay trusted.
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return context


class SmtpTransport:
    """Opens authenticated SMTP sessions as configured; every socket operation has a timeout."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def open(self) -> smtplib.SMTP:
        c = self.config
        client: smtplib.SMTP
        if c.ssl:
            client = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=c.tls_context())
        else:
            client = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        try:
            client.ehlo()
            if c.starttls and not c.ssl:
                client.starttls(context=c.tls_context())
                client.ehlo()
            if c.user:
                client.login(c.user, c.password or "")
        except BaseException:
            client.close()
            raise
        return client


def build_message(row: Any, sender: str) -> EmailMessage:
    """The MIME message of one delivery row: text and HTML alternatives, a deterministic Message-ID."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "reciprocity.local"
    message = EmailMessage()
    message["From"] = sender
    # Again here, not only when rendering: deliveries planned before names were cleaned are still pending.
    message["To"] = formataddr((one_line(row.to_name or ""), row.to_address))
    message["Subject"] = one_line(row.subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{row.alert_id}.{row.recipient}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    message["X-Reciprocity-Alert"] = row.alert_id
    message["X-Reciprocity-Recipient"] = row.recipient
    message.set_content(row.text_body)
    message.add_alternative(row.html_body, subtype="html")
    return message


def classify(err: BaseException) -> tuple[Scope, str]:
    """Whether a failure to send one message is for good (about this message) or for now, and for whom.

    For failures while opening a session (connect, TLS, login) see `describe`: those are always the server's.
    """
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        answers = list(err.recipients.values())
        code, text = answers[0] if answers else (0, b"")
        reason = f"recipient refused: {code} {_text(text)}"
        return ("permanent" if code >= 500 else "retry_delivery"), reason
    if isinstance(err, smtplib.SMTPSenderRefused):
        # Our own From refused: every delivery would fail the same way. A configuration problem to fix,
        # not a reason to throw alerts away.
        return "retry_server", f"sender {err.sender} refused: {err.smtp_code} {_text(err.smtp_error)}"
    if isinstance(err, smtplib.SMTPDataError):
        reason = f"message refused: {err.smtp_code} {_text(err.smtp_error)}"
        return ("permanent" if err.smtp_code >= 500 else "retry_delivery"), reason
    if isinstance(err, smtplib.SMTPResponseException):
        reason = f"{err.smtp_code} {_text(err.smtp_error)}"
        if err.smtp_code == 421 or err.smtp_code < 400:  # the server closing the session, or talking nonsense
            return "retry_server", reason
        return ("permanent" if err.smtp_code >= 500 else "retry_delivery"), reason
    if isinstance(err, smtplib.SMTPNotSupportedError):  # e.g. an address that needs SMTPUTF8 the server lacks
        return "permanent", f"the server cannot take this message: {err}"
    if isinstance(err, OSError):  # includes SMTPServerDisconnected, timeouts, resets
        return "retry_server", describe(err)
    # Not the network, not the server: something about this message (an encoding, a header) that a
    # retry will not fix. Failing it keeps it from blocking every delivery behind it.
    return "permanent", f"cannot send this message: {describe(err)}"


def describe(err: BaseException) -> str:
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return f"authentication failed: {err.smtp_code} {_text(err.smtp_error)}"
    if isinstance(err, smtplib.SMTPResponseException):
        return f"{err.smtp_code} {_text(err.smtp_error)}"
    return f"{type(err).__name__}: {err}" if str(err) else repr(err)


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def backoff(attempt: int, initial_s: float, max_s: float) -> float:
    """Delay before attempt `attempt + 1`: initial, 2x, 4x, ... capped at max."""
    return min(initial_s * 2 ** max(attempt - 1, 0), max_s)


def _no_crash(_step: str) -> None:
    return None


class Sender:
    def __init__(
        self,
        engine: Engine,
        transport: SmtpTransport,
        *,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 60.0,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        batch_size: int = 50,
        clock: Callable[[], datetime] = utcnow,
        crash_hook: CrashHook | None = None,
        housekeeping: Callable[[], object] | None = None,
    ) -> None:
        self._engine = engine
        self._transport = transport
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._lease = timedelta(seconds=lease_s)
        self._poll_s = poll_s
        self._batch_size = batch_size
        self._clock = clock
        self._hook = crash_hook or _no_crash
        self._housekeeping = housekeeping
        self._housekept_at = 0.0
        self._wake = threading.Event()
        self._pause_until = 0.0  # monotonic: no session attempts before this (server-level backoff)
        self._server_failures = 0
        self.problem: str | None = None  # why the server cannot take mail right now, if it cannot

    # --- loop ---------------------------------------------------------------------------------

    def wake(self) -> None:
        """New deliveries were planned: look now rather than at the next poll."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self._housekeeping is not None and time.monotonic() - self._housekept_at >= self._poll_s:
                    self._housekept_at = time.monotonic()
                    self._housekeeping()
                paused = self._pause_until - time.monotonic()
                if paused > 0:
                    stop.wait(min(paused, self._poll_s))
                    continue
                self._wake.clear()
                handled = self.send_due(stop)
                if self.problem is not None and self.problem.startswith("sender error"):
                    self.problem = None  # the database answers again
                if not handled:
                    self._wake.wait(self._poll_s)
            except Exception as err:  # a database hiccup: say so, try again shortly
                log.exception("sender pass failed")
                self.problem = f"sender error: {err!r}"
                stop.wait(self._poll_s)

    def send_due(self, stop: threading.Event | None = None) -> int:
        """One pass over the due pending deliveries; returns how many were handled (sent or failed)."""
        if self._pause_until > time.monotonic():
            return 0
        now = self._clock()
        d = deliveries.c
        with reading(self._engine) as conn:
            due = conn.execute(
                sa.select(deliveries)
                .where(d.status == "pending",
                       sa.or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
                       sa.or_(d.lease_until.is_(None), d.lease_until <= now))
                .order_by(d.signal_at, d.alert_id, d.recipient)
                .limit(self._batch_size)
            ).all()
        handled = 0
        session: smtplib.SMTP | None = None
        try:
            for row in due:
                if stop is not None and stop.is_set():
                    break
                if not self._claim(row):
                    continue
                self._hook("send:claimed")
                try:
                    if not row.to_address:
                        raise ValueError("no address for this lead")
                    message = build_message(row, self._transport.config.sender)
                except Exception as err:  # nothing a retry would fix; it must not block the others
                    self._mark_failed(row, f"cannot build the message: {describe(err)}")
                    handled += 1
                    continue
                if session is None:
                    try:
                        session = self._transport.open()
                    except Exception as err:  # connect, TLS, login: the server (or our settings), for now
                        reason = describe(err)
                        self._mark_retry(row, reason)
                        self._server_down(reason)
                        break
                try:
                    self._hook("send:before_smtp")
                    session.send_message(message, from_addr=parseaddr(self._transport.config.sender)[1],
                                         to_addrs=[row.to_address])
                except Exception as err:
                    _close(session)
                    session = None
                    scope, reason = classify(err)
                    if scope == "permanent":
                        self._mark_failed(row, reason)
                        handled += 1
                        continue
                    self._mark_retry(row, reason)
                    if scope == "retry_server":
                        self._server_down(reason)
                        break
                    continue
                self._hook("send:after_smtp_accept")
                self._mark_sent(row)
                self._hook("send:after_mark_sent")
                self._server_up()
                handled += 1
        finally:
            if session is not None:
                try:
                    session.quit()
                except Exception:  # the message is accepted; a rude goodbye changes nothing
                    session.close()
        return handled

    # --- state changes, each its own small transaction -----------------------------------------

    def _claim(self, row: Any) -> bool:
        now = self._clock()
        d = deliveries.c
        with self._engine.begin() as conn:
            return conn.execute(
                sa.update(deliveries)
                .where(d.alert_id == row.alert_id, d.recipient == row.recipient, d.status == "pending",
                       sa.or_(d.lease_until.is_(None), d.lease_until <= now))
                .values(lease_until=now + self._lease)
            ).rowcount == 1

    def _mark_sent(self, row: Any) -> None:
        d = deliveries.c
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(d.alert_id == row.alert_id, d.recipient == row.recipient, d.status == "pending")
                .values(status="sent", sent_at=self._clock(), attempts=d.attempts + 1, lease_until=None,
                        next_attempt_at=None)
            )
        metrics.SENT.inc()
        # Member ids only: logs outlive a forgetting, so no address or name ever goes into them.
        log.info("sent alert %s to %s", row.alert_id, row.recipient)

    def _mark_failed(self, row: Any, reason: str) -> None:
        d = deliveries.c
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(d.alert_id == row.alert_id, d.recipient == row.recipient, d.status == "pending")
                .values(status="failed", last_error=reason, attempts=d.attempts + 1, lease_until=None,
                        next_attempt_at=None)
            )
        metrics.FAILED.inc()
        log.error("alert %s to %s failed for good: %s", row.alert_id, row.recipient, _without(reason, row.to_address))

    def _mark_retry(self, row: Any, reason: str) -> None:
        attempts = row.attempts + 1
        delay = backoff(attempts, self._retry_initial_s, self._retry_max_s)
        d = deliveries.c
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(d.alert_id == row.alert_id, d.recipient == row.recipient, d.status == "pending")
                .values(attempts=d.attempts + 1, last_error=reason, lease_until=None,
                        next_attempt_at=self._clock() + timedelta(seconds=delay))
            )
        metrics.RETRIED.inc()
        log.warning("alert %s to %s not sent (%s); retry in %.1f s", row.alert_id, row.recipient,
                    _without(reason, row.to_address), delay)

    def _server_down(self, reason: str) -> None:
        self._server_failures += 1
        delay = backoff(self._server_failures, self._retry_initial_s, self._retry_max_s)
        self._pause_until = time.monotonic() + delay
        self.problem = reason

    def _server_up(self) -> None:
        self._server_failures = 0
        self._pause_until = 0.0
        self.problem = None

    # --- health -------------------------------------------------------------------------------

    def health_reason(self) -> str | None:
        """Why pending deliveries cannot be sent, or None (nothing pending, or the server takes mail)."""
        if self.problem is None:
            return None
        with reading(self._engine) as conn:
            pending = conn.execute(
                sa.select(sa.func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
            ).scalar_one()
        if not pending:
            return None
        if self.problem.startswith("sender error"):
            return f"degraded: {self.problem}"
        return f"degraded: SMTP unreachable: {self.problem} ({pending} pending)"


def _close(session: smtplib.SMTP | None) -> None:
    if session is not None:
        try:
            session.close()
        except Exception as err:
            log.debug("closing SMTP session: %r", err)


def _without(reason: str, address: str | None) -> str:
    """An SMTP server's reply often quotes the address; the log gets it without."""
    return reason.replace(address, "<address>") if address else reason
