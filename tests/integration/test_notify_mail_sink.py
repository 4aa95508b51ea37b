"""The local mail sink (aiosmtpd + maildir): what `make run` starts on port 1025 and the tests send to."""

from __future__ import annotations

import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from devstack.mail_sink import MailSink
from devstack.ports import free_port
from tests.support.services import wait_for

ROOT = Path(__file__).resolve().parents[2]


def message(to: str, subject: str = "hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "alerts@reciprocity.local"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("plain")
    msg.add_alternative("<p>html</p>", subtype="html")
    return msg


def test_every_accepted_message_lands_in_the_maildir(tmp_path) -> None:
    with MailSink(tmp_path / "mail") as sink, smtplib.SMTP(sink.host, sink.port, timeout=5) as smtp:
        smtp.send_message(message("a@example.org", "first"))
        smtp.send_message(message("b@example.org", "second"))
    stored = sink.messages()
    assert [m["Subject"] for m in stored] == ["first", "second"]
    assert stored[0]["X-RcptTo"] == "a@example.org"
    assert [p.get_content_type() for p in stored[0].iter_parts()] == ["text/plain", "text/html"]
    assert len(list((tmp_path / "mail" / "new").iterdir())) == 2  # a plain maildir any mail reader opens


def test_refused_recipients_get_a_permanent_550(tmp_path) -> None:
    with MailSink(tmp_path / "mail", refuse=["Bad@Example.org"]) as sink, \
            smtplib.SMTP(sink.host, sink.port, timeout=5) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.send_message(message("bad@example.org"))
        assert refused.value.recipients["bad@example.org"][0] == 550
        smtp.send_message(message("good@example.org"))
    assert [m["To"] for m in sink.messages()] == ["good@example.org"]


def test_down_refuses_connections_and_up_listens_on_the_same_port_again(tmp_path) -> None:
    sink = MailSink(tmp_path / "mail").start()
    try:
        port = sink.port
        sink.down()
        with pytest.raises(ConnectionRefusedError):
            smtplib.SMTP(sink.host, port, timeout=5)
        sink.up()
        assert sink.port == port
        with smtplib.SMTP(sink.host, port, timeout=5) as smtp:
            smtp.send_message(message("a@example.org"))
        assert len(sink.messages()) == 1
    finally:
        sink.stop()


def test_runs_as_a_program_like_make_run_starts_it(tmp_path) -> None:
    port = free_port()
    maildir = tmp_path / "var" / "mail"
    proc = subprocess.Popen([sys.executable, "-m", "devstack.mail_sink", "--maildir", str(maildir),
                             "--port", str(port), "--host", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)  # as the Procfile runs it
    try:
        def send() -> bool:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                    smtp.send_message(message("lead@example.org", "from the program"))
                return True
            except OSError:
                return False

        wait_for(send, timeout_s=30, interval_s=0.2, what="the sink to accept a message")
        assert [m["Subject"] for m in MailSink(maildir).messages()] == ["from the program"]
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, output.decode()
