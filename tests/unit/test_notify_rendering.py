"""Rendering alert emails (pure): who, which circle, the numbers, the window, the link, a suggestion."""

import re
from datetime import date
from html import unescape
from types import SimpleNamespace

import pytest
from reciprocity.notify import testing as t
from reciprocity.notify.rendering import Raised, duration, member_url, one_line, render
from reciprocity.notify.routing import CircleFacts, Directory, MemberFacts, Recipient, Via
from reciprocity.notify.sender import build_message

ANA = MemberFacts("ana", "Ana Lima", "ana@example.org")
DIRECTORY = Directory(
    {"ana": ANA, "bo": MemberFacts("bo", "Bo Chen", "bo@example.org")},
    {"design": CircleFacts("design", "Design", "studio", ("bo",)), "studio": CircleFacts("studio", "Studio")},
)
BO = Recipient("bo", "Bo Chen", "bo@example.org", (Via("design", "design", "lead"),))
BASE = "https://reciprocity.example/"
BLAME = ("blame", "fault", "lazy", "failing", "underperform", "should have")


def text_of(html: str) -> str:
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed; links as their targets."""
    shown = re.sub(r'<a href="([^"]+)"[^>]*>', r" \1 ", html)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", shown)))


def test_overextended_names_who_where_the_numbers_the_window_the_link_and_a_suggestion() -> None:
    signal = t.overextended("ana", ["design"], given=400, received=60, given_7=200)
    (email,) = render("alert-1", signal, ANA, [BO], DIRECTORY, web_base_url=BASE)
    assert (email.alert_id, email.recipient, email.to, email.to_name) == ("alert-1", "bo", "bo@example.org", "Bo Chen")
    assert "Ana Lima" in email.subject and "Design" in email.subject
    for part in (email.text, text_of(email.html)):
        assert "Hello Bo Chen" in part
        assert "Ana Lima" in part and "Design" in part
        assert "400 minutes" in part and "60 minutes" in part and "6.7" in part
        assert "6 h 40 min" in part
        assert "3 April 2025" in part and "1 May 2025" in part and "28 days" in part
        assert "https://reciprocity.example/members/ana" in part
        assert "ask how they are" in part.lower() and "rebalance mentoring pairs" in part.lower()
        assert "you are a lead of Design, one of Ana Lima's circles" in part
        assert not any(word in part.lower() for word in BLAME)
    assert '<a href="https://reciprocity.example/members/ana"' in email.html


def test_overextended_by_capacity_shows_the_last_seven_days_against_the_declared_capacity() -> None:
    signal = t.overextended("ana", ["design"], reason="capacity", given=300, received=200, given_7=700, capacity=600)
    (email,) = render("a", signal, ANA, [BO], DIRECTORY, web_base_url=BASE)
    assert "gave 11 h 40 min (700 minutes), more than the 10 h a week they declared" in email.text
    assert "times as much given as received" not in email.text  # the ratio did not cross the line
    assert "600 minutes (10 h)" in email.text


def test_nothing_received_is_said_plainly_not_as_a_ratio() -> None:
    signal = t.overextended("ana", ["design"], given=300, received=0)
    (email,) = render("a", signal, ANA, [BO], DIRECTORY, web_base_url=BASE)
    assert "with nothing received in return yet" in email.text
    assert "given / received:          nothing received" in email.text


def test_disconnected_says_how_long_and_since_when() -> None:
    signal = t.disconnected("ana", ["design"], days=23, last=date(2025, 4, 8))
    (email,) = render("a", signal, ANA, [BO], DIRECTORY, web_base_url=BASE)
    assert "no exchanges for 23 days" in email.subject
    for part in (email.text, text_of(email.html)):
        assert "23 days" in part and "8 April 2025" in part and "ask how they are" in part.lower()
        assert not any(word in part.lower() for word in BLAME)
    (never,) = render("a", t.disconnected("ana", ["design"], last=None), ANA, [BO], DIRECTORY, web_base_url=BASE)
    assert "Last exchange: none recorded yet" in never.text


def test_all_clear_is_short_and_says_what_cleared() -> None:
    raised = t.overextended("ana", ["design"])
    clear = t.cleared(t.envelope(raised), raised)
    (email,) = render("c", clear, ANA, [BO], DIRECTORY, web_base_url=BASE,
                      raised=Raised("overextended", date(2025, 4, 20)))
    assert email.subject.startswith("All clear: Ana Lima")
    assert "20 April 2025" in email.text and "back within the circle's balance" in email.text
    assert "20 April 2025" in text_of(email.html)
    with pytest.raises(ValueError):
        render("c", clear, ANA, [BO], DIRECTORY, web_base_url=BASE)


def test_a_lead_told_as_the_parent_circle_is_told_why() -> None:
    zed = Recipient("zed", "Zed", "zed@example.org", (Via("studio", "design", "member_leads_circle"),))
    (email,) = render("a", t.overextended("ana", ["design"]), ANA, [zed], DIRECTORY, web_base_url=BASE)
    assert "you are a lead of Studio, the circle above Design, which Ana Lima leads" in email.text


def test_names_are_escaped_in_html_and_kept_in_text() -> None:
    odd = MemberFacts("ana", "Ana <b>Lima</b> & co", "ana@example.org")
    (email,) = render("a", t.overextended("ana", ["design"]), odd, [BO], DIRECTORY, web_base_url=BASE)
    assert "Ana &lt;b&gt;Lima&lt;/b&gt; &amp; co" in email.html and "<b>Lima</b>" not in email.html
    assert "Ana <b>Lima</b> & co" in email.text


def test_line_breaks_in_names_from_old_events_still_make_a_sendable_email() -> None:
    """Events in the log may hold names with line breaks (the commands took them once): a header cannot."""
    ann = MemberFacts("ana", "Ana\nLima", "ana@example.org")
    odd = Directory({"ana": ann}, {"design": CircleFacts("design", "De\r\nsign\t\x00team", None, ("bo",))})
    lead = Recipient("bo", "Bo\r\nChen", "bo@example.org", (Via("design", "design", "lead"),))
    (email,) = render("a", t.overextended("ana", ["design"]), ann, [lead], odd, web_base_url=BASE)
    assert email.subject == "Heads-up: Ana Lima may be carrying a lot (De sign team)"
    assert email.to_name == "Bo Chen"
    row = SimpleNamespace(alert_id="a", recipient="bo", to_name=email.to_name, to_address=email.to,
                          subject=email.subject, text_body=email.text, html_body=email.html)
    message = build_message(row, "Reciprocity <alerts@reciprocity.example>")
    assert message["Subject"] == email.subject and message["To"] == "Bo Chen <bo@example.org>"


@pytest.mark.parametrize(("given", "said"), [
    ("Ana Lima", "Ana Lima"), ("Ana\nLima", "Ana Lima"), (" Ana \r\n\t Lima ", "Ana Lima"),
    ("Ana\x00Lima\x7f", "Ana Lima"), ("Ana\u2028Lima", "Ana Lima"), ("Jovanović", "Jovanović"),
])
def test_one_line(given: str, said: str) -> None:
    assert one_line(given) == said


def test_one_email_per_recipient() -> None:
    cy = Recipient("cy", "Cy", "cy@example.org", (Via("design", "design", "lead"),))
    emails = render("a", t.overextended("ana", ["design"]), ANA, [BO, cy], DIRECTORY, web_base_url=BASE)
    assert [e.to for e in emails] == ["bo@example.org", "cy@example.org"]


@pytest.mark.parametrize(("minutes", "said"), [(40, "40 min"), (60, "1 h"), (95, "1 h 35 min"), (None, "not declared")])
def test_duration(minutes: int | None, said: str) -> None:
    assert duration(minutes) == said


def test_member_url_ignores_a_trailing_slash() -> None:
    assert member_url("http://127.0.0.1:8000/", "ana") == member_url("http://127.0.0.1:8000", "ana")
    assert member_url("http://127.0.0.1:8000", "ana") == "http://127.0.0.1:8000/members/ana"
