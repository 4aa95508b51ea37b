"""SMTP over TLS for real: notify's transport against a sink that requires STARTTLS, or speaks TLS
from the first byte, with a certificate from a private CA that notify is told to trust."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import pytest
import trustme
from reciprocity.notify.sender import SmtpConfig, SmtpTransport

from devstack.mail_sink import MailSink
from tests.integration.test_notify_mail_sink import message


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_notify_sends_over_tls_with_a_login(tmp_path: Path, ca: trustme.CA, implicit: bool) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with MailSink(tmp_path / "mail", tls=server_context(ca), implicit_tls=implicit,
                  credentials=("notify", "s3cret")) as sink:
        config = SmtpConfig(host="127.0.0.1", port=sink.port, user="notify", password="s3cret",
                            starttls=not implicit, ssl=implicit, ca_file=str(ca_file), timeout_s=5)
        with SmtpTransport(config).open() as session:
            assert isinstance(session.sock, ssl.SSLSocket)  # encrypted before the password went out
            session.send_message(message("lead@example.org", "over tls"))
    assert [m["Subject"] for m in sink.messages()] == ["over tls"]


def test_a_certificate_nobody_vouches_for_is_refused(tmp_path: Path, ca: trustme.CA) -> None:
    with MailSink(tmp_path / "mail", tls=server_context(ca)) as sink:
        config = SmtpConfig(host="127.0.0.1", port=sink.port, starttls=True, timeout_s=5)  # system CAs only
        with pytest.raises(ssl.SSLCertVerificationError):
            SmtpTransport(config).open()
    assert sink.messages() == []


def test_plain_sessions_are_refused_where_starttls_is_required(tmp_path: Path, ca: trustme.CA) -> None:
    with MailSink(tmp_path / "mail", tls=server_context(ca)) as sink, \
            smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as smtp, pytest.raises(smtplib.SMTPException):
        smtp.send_message(message("lead@example.org"))
    assert sink.messages() == []
