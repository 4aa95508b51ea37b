"""Rendering alert emails (pure): who, which circle, the numbers, the window, the link, a suggestion."""

import re
from datetime import date, timedelta
from html import unescape
from types import SimpleNamespace

import pytest
from reciprocity.contracts.events import MemberDisconnected, MemberOverextended
from reciprocity.notify.rendering import Raised, amount, duration, member_url, one_line, render, span, wrap_text
from reciprocity.notify.routing import CircleFacts, Directory, MemberFacts, Recipient, Via
from reciprocity.notify.sender import build_message

from tests.support import events as t

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
        assert "6 h 40 min" in part and "1 h" in part and "6.7" in part
        assert "4 April to 1 May 2025" in part and "28 days" in part
        assert "https://reciprocity.example/members/ana" in part
        assert "ask how they are" in part.lower() and "rebalance mentoring pairs" in part.lower()
        assert "You lead Design, a circle Ana Lima belongs to." in part
        assert not any(word in part.lower() for word in BLAME)
    assert '<a href="https://reciprocity.example/members/ana"' in email.html


def test_overextended_by_capacity_shows_the_last_seven_days_against_the_declared_capacity() -> None:
    signal = t.overextended("ana", ["design"], reason="capacity", given=300, received=200, given_7=700, capacity=600)
    (email,) = render("a", signal, ANA, [BO], DIRECTORY, web_base_url=BASE)
    assert "gave 11 h 40 min, more than the 10 h a week they said they can give" in one_line(email.text)
    assert "In the last 7 days (25 April to 1 May 2025)" in one_line(email.text)
    assert "times as much given as received" not in email.text  # the ratio did not cross the line
    assert "declared weekly capacity:  10 h a week" in email.text


def test_nothing_received_is_said_plainly_not_as_a_ratio() -> None:
    signal = t.overextended("ana", ["design"], given=300, received=0)
    (email,) = render("a", signal, ANA, [BO], DIRECTORY, web_base_url=BASE)
    assert "and received nothing in return yet" in one_line(email.text)
    assert "given / received:          nothing received" in email.text


def test_disconnected_says_how_long_and_since_when() -> None:
    signal = t.disconnected("ana", ["design"], days=23, last=date(2025, 4, 8))
    (email,) = render("a", signal, ANA, [BO], DIRECTORY, web_base_url=BASE)
    assert "no exchanges for 23 days" in email.subject
    for part in (email.text, text_of(email.html)):
        assert "23 days" in part and "8 April 2025" in part and "ask how they are" in part.lower()
        assert "9 April to 1 May 2025" in one_line(part)
        assert not any(word in part.lower() for word in BLAME)
    (never,) = render("a", t.disconnected("ana", ["design"], last=None), ANA, [BO], DIRECTORY, web_base_url=BASE)
    assert "Last exchange: none recorded yet" in never.text


def test_all_clear_is_short_and_says_what_cleared() -> None:
    raised = t.overextended("ana", ["design"])
    clear = t.cleared(t.envelope(raised), raised)
    (email,) = render("c", clear, ANA, [BO], DIRECTORY, web_base_url=BASE,
                      raised=Raised("overextended", date(2025, 4, 20)))
    assert email.subject.startswith("All clear: Ana Lima")
    assert "20 April 2025" in email.text and "back in balance" in one_line(email.text)
    assert "20 April 2025" in text_of(email.html)
    with pytest.raises(ValueError):
        render("c", clear, ANA, [BO], DIRECTORY, web_base_url=BASE)


def test_a_lead_told_as_the_parent_circle_is_told_why() -> None:
    zed = Recipient("zed", "Zed", "zed@example.org", (Via("studio", "design", "member_leads_circle"),))
    (email,) = render("a", t.overextended("ana", ["design"]), ANA, [zed], DIRECTORY, web_base_url=BASE)
    assert "You lead Studio, the circle above Design, which Ana Lima leads." in one_line(email.text)


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


# --- what the reviewer of the demo's emails found ------------------------------------------------------


AMARA = MemberFacts("amara", "Amara Okafor", "amara@example.org")
LEAD = MemberFacts("lena", "Lena Novak", "lena@example.org")
ORG = Directory(
    {"amara": AMARA, "lena": LEAD},
    {"commons": CircleFacts("commons", "Commons", None, ("lena",)),
     "engineering": CircleFacts("engineering", "Engineering", "org", ("lena",)),
     "guild": CircleFacts("guild", "Learning Guild", "org", ("lena",)),
     "org": CircleFacts("org", "Org", None, ("zed",))},
)
END = date(2026, 11, 22)


def parts(email) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The text part with its hard wrapping undone, and the HTML part as read."""
    return one_line(email.text), text_of(email.html)


def test_the_28_day_window_is_counted_inclusive_as_balance_defines_it() -> None:
    # balance: window_start = today - 27, window_end = today: 28 days, as the balance API's window_days
    signal = MemberOverextended(member_id="amara", circles=["commons"], window_start=END - timedelta(days=27),
                                window_end=END, reason="ratio", given_minutes=725, received_minutes=100, ratio=7.25,
                                given_last_7_days=125, weekly_capacity_minutes=None)
    (email,) = render("a", signal, AMARA, [BO], ORG, web_base_url=BASE)
    for part in parts(email):
        assert "26 October to 22 November 2026" in part
        assert "28 days" in part and "27 days" not in part


def test_disconnection_counts_agree_with_each_other_and_the_window() -> None:
    last = date(2026, 10, 15)
    signal = MemberDisconnected(member_id="amara", circles=["commons"], window_start=last + timedelta(days=1),
                                window_end=END, last_exchange_on=last, days_without_exchange=38)
    (email,) = render("a", signal, AMARA, [BO], ORG, web_base_url=BASE)
    assert "38 days" in email.subject
    for part in parts(email):
        assert "38 days without an exchange in either direction: 16 October to 22 November 2026" in part
        assert "37 days" not in part and "Last exchange: 15 October 2026" in part


def test_a_member_who_never_exchanged_gets_a_period_as_long_as_the_count() -> None:
    # balance counts the days after registration; the period shown has as many days as the count
    signal = MemberDisconnected(member_id="amara", circles=["commons"], window_start=END - timedelta(days=21),
                                window_end=END, last_exchange_on=None, days_without_exchange=21)
    (email,) = render("a", signal, AMARA, [BO], ORG, web_base_url=BASE)
    for part in parts(email):
        assert "21 days without an exchange in either direction: 2 to 22 November 2026" in part
        assert "none recorded yet" in part


@pytest.mark.parametrize("reason", ["ratio", "capacity", "ratio_and_capacity"])
def test_each_amount_is_said_once_in_the_friendliest_form(reason: str) -> None:
    signal = MemberOverextended(member_id="amara", circles=["commons"], window_start=END - timedelta(days=27),
                                window_end=END, reason=reason, given_minutes=725, received_minutes=0, ratio=None,  # type: ignore[arg-type]
                                given_last_7_days=330, weekly_capacity_minutes=240)
    (email,) = render("a", signal, AMARA, [BO], ORG, web_base_url=BASE)
    for part in parts(email):
        assert "minutes" not in part  # never "0 min (0 minutes)" nor "725 minutes (12 h 5 min)"
        assert not re.search(r"\(\d+ (h|min)", part)  # no amount repeated in brackets
        assert not re.search(r"\b0 min", part) and re.search(r"received:? +nothing", part, re.IGNORECASE)
        assert "12 h 5 min" in part and "5 h 30 min" in part and "4 h a week" in part


@pytest.mark.parametrize(("circles", "said"), [
    (["commons"], "You lead Commons, a circle Amara Okafor belongs to."),
    (["commons", "engineering"], "You lead Commons and Engineering, circles Amara Okafor belongs to."),
    (["commons", "engineering", "guild"],
     "You lead Commons, Engineering and Learning Guild, circles Amara Okafor belongs to."),
])
def test_a_lead_of_several_of_the_members_circles_is_told_why_in_one_sentence(circles: list[str], said: str) -> None:
    lead = Recipient("lena", "Lena Novak", "lena@example.org", tuple(Via(c, c, "lead") for c in circles))
    (email,) = render("a", t.overextended("amara", circles), AMARA, [lead], ORG, web_base_url=BASE)
    for part in parts(email):
        assert said in part
        assert part.count("You lead") == 1 and "you are a lead of" not in part.lower()


def test_a_lead_of_the_parent_circle_is_told_which_circles_it_stands_above() -> None:
    zed = Recipient("zed", "Zed", "zed@example.org", (
        Via("commons", "commons", "lead"),
        Via("org", "engineering", "member_leads_circle"), Via("org", "guild", "member_leads_circle")))
    (email,) = render("a", t.overextended("amara", ["engineering", "guild"]), AMARA, [zed], ORG, web_base_url=BASE)
    for part in parts(email):
        assert ("You lead Commons, a circle Amara Okafor belongs to. You also lead Org, the circle above "
                "Engineering and Learning Guild, circles Amara Okafor leads.") in part
    nobody = Recipient("zed", "Zed", "zed@example.org", (Via("org", "engineering", "no_lead_to_tell"),))
    (email,) = render("a", t.overextended("amara", ["engineering"]), AMARA, [nobody], ORG, web_base_url=BASE)
    assert ("You lead Org, the nearest circle above Engineering, as it has no other lead available to tell."
            in one_line(email.text))


def test_the_text_part_is_hard_wrapped_without_splitting_amounts_dates_or_links() -> None:
    signal = t.overextended("amara", ["commons", "engineering", "guild"], reason="ratio_and_capacity",
                            given=725, received=0, given_7=330, capacity=240)
    lead = Recipient("lena", "Lena Novak", "lena@example.org", tuple(Via(c, c, "lead") for c in signal.circles))
    long_base = "https://reciprocity.example.org/a/rather/long/path/to/the/members/pages/of/this/organisation"
    (email,) = render("a", signal, AMARA, [lead], ORG, web_base_url=long_base)
    for line in email.text.splitlines():
        assert len(line) <= 72 or line.split()[-1].startswith("https://"), line
    assert f"{long_base}/members/amara" in email.text.split()
    assert not re.search(r"\d+ h\n|\d+\n *min|\d+ \w+\n *\d{4}", email.text)
    assert wrap_text("- " + "word " * 30).splitlines()[1].startswith("  word")


def test_an_all_clear_never_speaks_of_a_pause() -> None:
    # A pause clears a signal without any email (notify plans none); an all clear that is sent says
    # what changed and nothing about anyone's availability.
    raised = t.disconnected("amara", ["commons"])
    clear = t.cleared(t.envelope(raised), raised, window_end=END, reason="exchanged")
    (email,) = render("c", clear, AMARA, [BO], ORG, web_base_url=BASE, raised=Raised("disconnected", END))
    assert "exchanging with others again" in one_line(email.text)
    assert "had not exchanged with anyone for a while" in one_line(email.text)
    for part in parts(email):
        assert "pause" not in part


@pytest.mark.parametrize(("start", "end", "said"), [
    (date(2026, 11, 16), date(2026, 11, 22), "16 to 22 November 2026"),
    (date(2026, 10, 26), date(2026, 11, 22), "26 October to 22 November 2026"),
    (date(2025, 12, 20), date(2026, 1, 16), "20 December 2025 to 16 January 2026"),
    (date(2026, 11, 22), date(2026, 11, 22), "22 November 2026"),
])
def test_span(start: date, end: date, said: str) -> None:
    assert span(start, end) == said


def test_amount() -> None:
    assert (amount(0), amount(125), amount(None)) == ("nothing", "2 h 5 min", "not declared")
