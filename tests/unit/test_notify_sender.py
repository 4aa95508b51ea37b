"""The sender's pure parts: which SMTP failures are for good, backoff, the MIME message."""

import smtplib
from types import SimpleNamespace

import pytest
from reciprocity.notify.sender import backoff, build_message, classify, describe


@pytest.mark.parametrize(("err", "scope"), [
    (smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"no such user")}), "permanent"),
    (smtplib.SMTPRecipientsRefused({"a@x.org": (452, b"mailbox full")}), "retry_delivery"),
    (smtplib.SMTPDataError(554, b"rejected as spam"), "permanent"),
    (smtplib.SMTPDataError(451, b"try later"), "retry_delivery"),
    (smtplib.SMTPSenderRefused(553, b"not our domain", "alerts@reciprocity.local"), "retry_server"),
    (smtplib.SMTPResponseException(421, b"closing"), "retry_server"),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), "retry_server"),
    (ConnectionRefusedError(111, "Connection refused"), "retry_server"),
    (TimeoutError("timed out"), "retry_server"),
    (smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server"), "permanent"),
    (UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range"), "permanent"),
])
def test_permanent_only_when_the_message_itself_is_refused(err: BaseException, scope: str) -> None:
    assert classify(err)[0] == scope


def test_reasons_quote_the_servers_answer() -> None:
    assert classify(smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"5.1.1 no such user")}))[1] == (
        "recipient refused: 550 5.1.1 no such user")
    assert describe(smtplib.SMTPAuthenticationError(535, b"bad credentials")) == (
        "authentication failed: 535 bad credentials")
    assert describe(ConnectionRefusedError(111, "Connection refused")) == (
        "ConnectionRefusedError: [Errno 111] Connection refused")


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 1.0, 60.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(1, 0.05, 0.2) == 0.05 and backoff(5, 0.05, 0.2) == 0.2


def planned(**changes: str) -> SimpleNamespace:
    """A deliveries row as the sender reads it."""
    return SimpleNamespace(**{"alert_id": "6c36ccc7", "recipient": "bo", "to_name": "Bo Chen",
                              "to_address": "bo@example.org", "subject": "Heads-up: Ana Lima may be carrying a lot "
                              "(Design)", "text_body": "plain words", "html_body": "<p>html words</p>", **changes})


def test_the_message_has_both_parts_and_a_deterministic_message_id() -> None:
    message = build_message(planned(), "Reciprocity <alerts@reciprocity.example>")
    assert message["To"] == "Bo Chen <bo@example.org>"
    assert message["Message-ID"] == "<6c36ccc7.bo@reciprocity.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_body(("plain",)).get_content() == "plain words\n"
    assert message.get_body(("html",)).get_content() == "<p>html words</p>\n"


def test_a_delivery_planned_with_a_line_break_in_a_name_still_builds() -> None:
    """Rows rendered before names were made one line are still pending: Python refuses such a header."""
    row = planned(to_name="Bo\r\nChen", subject="Heads-up: Ana\nLima may be carrying a lot (Design)")
    message = build_message(row, "Reciprocity <alerts@reciprocity.example>")
    assert message["To"] == "Bo Chen <bo@example.org>"
    assert message["Subject"] == "Heads-up: Ana Lima may be carrying a lot (Design)"
    assert b"Ana Lima" in message.as_bytes()
