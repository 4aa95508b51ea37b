"""Who hears about a signal: the recipient rules of notify, on directory snapshots (pure)."""

from datetime import date

from reciprocity.notify.routing import CircleFacts, Directory, MemberFacts, Via, route

DAY = date(2025, 5, 1)


def people(*ids: str, **overrides: MemberFacts) -> dict[str, MemberFacts]:
    found = {i: MemberFacts(i, i.title(), f"{i}@example.org") for i in ids}
    found.update(overrides)
    return found


def org(**circles: tuple[str | None, tuple[str, ...]]) -> dict[str, CircleFacts]:
    return {cid: CircleFacts(cid, cid.title(), parent, leads) for cid, (parent, leads) in circles.items()}


def told(routing) -> dict[str, tuple[Via, ...]]:  # type: ignore[no-untyped-def]
    return {r.member_id: r.via for r in routing.recipients}


def test_the_leads_of_the_members_circle_are_told() -> None:
    directory = Directory(people("ana", "bo", "cy"), org(design=(None, ("bo", "cy"))))
    routing = route("ana", ["design"], directory, on=DAY)
    assert routing.complete
    assert told(routing) == {"bo": (Via("design", "design", "lead"),), "cy": (Via("design", "design", "lead"),)}
    assert routing.recipients[0].email == "bo@example.org"


def test_a_member_who_leads_their_own_circle_is_never_told_the_parents_leads_are() -> None:
    directory = Directory(people("ana", "bo", "zed"),
                          org(studio=(None, ("zed",)), design=("studio", ("ana", "bo"))))
    routing = route("ana", ["design"], directory, on=DAY)
    assert "ana" not in told(routing)
    # the co-lead still hears; the circle above hears because its lead's load is its business
    assert told(routing) == {"bo": (Via("design", "design", "lead"),),
                             "zed": (Via("studio", "design", "member_leads_circle"),)}


def test_a_sole_lead_goes_to_the_parent_and_skips_ancestors_without_a_lead_to_tell() -> None:
    directory = Directory(
        people("ana", "root"),
        org(org=(None, ("root",)), studio=("org", ("ana",)), design=("studio", ("ana",))),
    )
    routing = route("ana", ["design"], directory, on=DAY)
    # studio's only lead is ana herself, so the nearest circle with someone else to tell is org
    assert told(routing) == {"root": (Via("org", "design", "member_leads_circle"),)}


def test_a_circle_without_leads_goes_to_the_nearest_ancestor_with_one() -> None:
    directory = Directory(people("ana", "root"), org(org=(None, ("root",)), team=("org", ())))
    routing = route("ana", ["team"], directory, on=DAY)
    assert told(routing) == {"root": (Via("org", "team", "no_lead_to_tell"),)}


def test_a_lead_of_several_of_the_members_circles_is_told_once_with_every_reason() -> None:
    directory = Directory(people("ana", "bo"), org(design=(None, ("bo",)), ops=(None, ("bo",))))
    routing = route("ana", ["design", "ops", "design"], directory, on=DAY)
    assert told(routing) == {"bo": (Via("design", "design", "lead"), Via("ops", "ops", "lead"))}


def test_a_paused_lead_is_skipped_with_a_reason_and_the_parent_is_told() -> None:
    directory = Directory(
        people("ana", "bo", "zed", bo=MemberFacts("bo", "Bo", "bo@example.org", "paused", date(2025, 6, 1))),
        org(studio=(None, ("zed",)), design=("studio", ("bo",))),
    )
    routing = route("ana", ["design"], directory, on=DAY)
    assert told(routing) == {"zed": (Via("studio", "design", "no_lead_to_tell"),)}
    assert [(s.member_id, s.reason) for s in routing.skipped] == [("bo", "lead bo is paused until 2025-06-01")]


def test_a_pause_that_ended_before_the_signal_does_not_count() -> None:
    directory = Directory(
        people("ana", "bo", bo=MemberFacts("bo", "Bo", "bo@example.org", "paused", date(2025, 4, 1))),
        org(design=(None, ("bo",))),
    )
    assert told(route("ana", ["design"], directory, on=DAY)) == {"bo": (Via("design", "design", "lead"),)}


def test_what_the_directory_does_not_know_yet_is_listed_as_missing() -> None:
    directory = Directory(people("bo"), org(design=("studio", ("ana", "bo", "cy"))))
    routing = route("ana", ["design", "ops"], directory, on=DAY)
    assert not routing.complete
    # ana unknown; cy is a lead not registered yet; ops unknown; studio is design's parent, unknown
    assert set(routing.missing) == {"member ana", "lead cy", "circle ops", "circle studio"}


def test_a_member_known_only_by_a_later_event_is_not_known_yet() -> None:
    directory = Directory({"ana": MemberFacts("ana", weekly_hours=10), **people("bo")}, org(design=(None, ("bo",))))
    assert route("ana", ["design"], directory, on=DAY).missing == ("member ana",)


def test_nobody_to_tell_is_reported_not_hidden() -> None:
    directory = Directory(people("ana"), org(design=(None, ("ana",)), ops=(None, ())))
    routing = route("ana", ["design", "ops"], directory, on=DAY)
    assert routing.complete and routing.recipients == ()
    assert routing.untold == ("design", "ops")


def test_a_cycle_of_parents_does_not_loop_forever() -> None:
    directory = Directory(people("ana"), org(a=("b", ("ana",)), b=("a", ())))
    routing = route("ana", ["a"], directory, on=DAY)
    assert routing.recipients == () and routing.untold == ("a",)
