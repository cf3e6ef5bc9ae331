"""Who is on call, with overrides, swaps, roster history and load: the service layer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.config import parse_org
from bot.demo.story import sample_org_text
from bot.errors import Conflict, InvalidInput, NotAllowed
from bot.oncall import service


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NOW = utc("2026-11-16 14:30")  # Mon 16 Nov 2026, 09:30 in New York; Bob is on infra-oncall


def with_members(members: str) -> str:
    text = sample_org_text()
    old = "members: [U0ENG00001, U0ENG00002, U0ENG00003, U0ENG00004, U0ENG00005]\n    start"
    assert text.count(old) == 1
    return text.replace(old, f"members: [{members}]\n    start")


def test_who_is_on_call_names_primary_secondary_and_shift_bounds(db, sample_org):
    with db.session() as session:
        current = service.who_is_on_call(session, sample_org, "infra-oncall", NOW)
    assert current.primary == "U0ENG00002"
    assert current.secondary == "U0ENG00012"  # data-oncall's person at that instant
    assert current.secondary_rotation_id == "data-oncall"
    assert current.shift_start == utc("2026-11-09 15:00")
    assert current.shift_end == utc("2026-11-16 15:00")
    assert not current.is_override


def test_handoff_instant_belongs_to_the_incoming_person(db, sample_org):
    with db.session() as session:
        before = service.who_is_on_call(
            session, sample_org, "infra-oncall", utc("2026-11-16 14:59:59")
        )
        at = service.who_is_on_call(session, sample_org, "infra-oncall", utc("2026-11-16 15:00"))
    assert (before.primary, at.primary) == ("U0ENG00002", "U0ENG00003")


def test_nobody_is_on_call_before_a_rotation_starts(db, sample_org):
    with db.session() as session:
        current = service.who_is_on_call(session, sample_org, "infra-oncall", utc("2026-10-01"))
    assert current.primary is None and current.shift_start is None


def test_secondary_follows_the_london_rotation_across_its_own_handoff(db, sample_org):
    # data-oncall hands over on Tuesdays at 10:00 London (10:00 UTC in November).
    with db.session() as session:
        before = service.who_is_on_call(
            session, sample_org, "infra-oncall", utc("2026-11-17 09:59")
        )
        after = service.who_is_on_call(session, sample_org, "infra-oncall", utc("2026-11-17 10:00"))
    assert (before.secondary, after.secondary) == ("U0ENG00012", "U0ENG00013")


def test_an_override_replaces_the_primary_for_its_window_only(db, sample_org):
    with db.session() as session:
        result = service.create_override(
            session,
            sample_org,
            "infra-oncall",
            "U0ENG00004",
            utc("2026-11-18 23:00"),
            utc("2026-11-19 03:00"),
            "U0ENG00003",
            NOW,
        )
        assert result.replaced == ["U0ENG00003"]
        inside = service.who_is_on_call(
            session, sample_org, "infra-oncall", utc("2026-11-19 01:00")
        )
        edge = service.who_is_on_call(session, sample_org, "infra-oncall", utc("2026-11-19 03:00"))
        segments = service.upcoming_shifts(
            session, sample_org, "infra-oncall", utc("2026-11-16 15:00"), utc("2026-11-23 15:00")
        )
    assert inside.primary == "U0ENG00004" and inside.scheduled == "U0ENG00003"
    assert inside.shift_start == utc("2026-11-18 23:00") and inside.shift_end == utc(
        "2026-11-19 03:00"
    )
    assert edge.primary == "U0ENG00003" and edge.shift_end == utc("2026-11-23 15:00")
    assert [(s.person, s.start, s.end) for s in segments] == [
        ("U0ENG00003", utc("2026-11-16 15:00"), utc("2026-11-18 23:00")),
        ("U0ENG00004", utc("2026-11-18 23:00"), utc("2026-11-19 03:00")),
        ("U0ENG00003", utc("2026-11-19 03:00"), utc("2026-11-23 15:00")),
    ]


def test_the_newest_override_wins_and_cancelling_restores_the_older(db, sample_org):
    with db.session() as session:
        first = service.create_override(
            session,
            sample_org,
            "infra-oncall",
            "U0ENG00004",
            utc("2026-11-18 00:00"),
            utc("2026-11-19 00:00"),
            "U0ENG00003",
            NOW,
        )
        second = service.create_override(
            session,
            sample_org,
            "infra-oncall",
            "U0ENG00005",
            utc("2026-11-18 06:00"),
            utc("2026-11-18 12:00"),
            "U0MGR00001",
            NOW + timedelta(1),
        )
        at = utc("2026-11-18 08:00")
        assert (
            service.who_is_on_call(session, sample_org, "infra-oncall", at).primary == "U0ENG00005"
        )
        service.cancel_override(session, sample_org, second.override.id, "U0VP000001", NOW)
        assert (
            service.who_is_on_call(session, sample_org, "infra-oncall", at).primary == "U0ENG00004"
        )
        assert first.override.id is not None


def test_a_cover_through_the_next_handoff_merges_into_one_stretch(db, sample_org):
    with db.session() as session:
        service.create_override(
            session,
            sample_org,
            "infra-oncall",
            "U0ENG00003",
            utc("2026-11-23 15:00"),
            utc("2026-11-25 15:00"),
            "U0ENG00004",
            NOW,
        )
        current = service.who_is_on_call(session, sample_org, "infra-oncall", utc("2026-11-20"))
    assert current.primary == "U0ENG00003"
    assert current.shift_end == utc("2026-11-25 15:00")


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        ("U0ENG00001", True),  # a member
        ("U0MGR00001", True),  # the team's manager
        ("U0VP000001", True),  # an admin in the config
        ("U0MGR00002", False),  # another team's manager
        ("U0APP00001", False),  # somebody else
    ],
)
def test_who_may_change_a_rotation(db, sample_org, actor, allowed):
    assert service.may_change(sample_org, "infra-oncall", actor) is allowed
    with db.session() as session:
        if allowed:
            service.create_override(
                session,
                sample_org,
                "infra-oncall",
                "U0ENG00004",
                utc("2026-11-18 00:00"),
                utc("2026-11-19 00:00"),
                actor,
                NOW,
            )
        else:
            with pytest.raises(NotAllowed, match="Only members of infra-oncall"):
                service.create_override(
                    session,
                    sample_org,
                    "infra-oncall",
                    "U0ENG00004",
                    utc("2026-11-18 00:00"),
                    utc("2026-11-19 00:00"),
                    actor,
                    NOW,
                )


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-19 00:00", "2026-11-18 00:00", "must end after it starts"),
        ("2026-11-01 00:00", "2026-11-02 00:00", "over already"),
        ("2026-11-18 00:00", "2027-03-01 00:00", "at most 90 days"),
        ("2026-11-18 00:00", "2026-11-19 00:00", "already on call"),
    ],
)
def test_bad_covers_are_refused_and_store_nothing(db, sample_org, start, end, message):
    person = "U0ENG00003"  # Carla holds 16-23 Nov already
    with db.session() as session, pytest.raises(InvalidInput, match=message):
        service.create_override(
            session, sample_org, "infra-oncall", person, utc(start), utc(end), "U0ENG00001", NOW
        )
    with db.session() as session:
        assert service.overrides_of(session, "infra-oncall", NOW) == []


def test_a_swap_exchanges_the_two_next_shifts(db, sample_org):
    with db.session() as session:
        swap = service.request_swap(
            session, sample_org, "infra-oncall", "U0ENG00001", "U0ENG00005", NOW
        )
        assert (swap.requester_start, swap.requestee_start) == (
            utc("2026-12-07 15:00"),
            utc("2026-11-30 15:00"),
        )
        result = service.accept_swap(session, sample_org, swap.id, "U0ENG00005", NOW)
        assert len(result.overrides) == 2
        first = service.who_is_on_call(session, sample_org, "infra-oncall", utc("2026-12-01"))
        second = service.who_is_on_call(session, sample_org, "infra-oncall", utc("2026-12-08"))
        moved = service.moved_shifts(session, sample_org, "infra-oncall", result.before, NOW)
    assert (first.primary, second.primary) == ("U0ENG00001", "U0ENG00005")
    assert {m.person for m in moved} == {"U0ENG00001", "U0ENG00005"}


def test_a_swap_on_chosen_dates(db, sample_org):
    with db.session() as session:
        swap = service.request_swap(
            session,
            sample_org,
            "infra-oncall",
            "U0ENG00001",
            "U0ENG00002",
            NOW,
            mine=date(2027, 1, 12),
            theirs=date(2026, 12, 15),
        )
        assert swap.requester_start == utc("2027-01-11 15:00")  # Alice's shift holding 12 Jan
        assert swap.requestee_start == utc("2026-12-14 15:00")  # Bob's holding 15 Dec
        with pytest.raises(
            InvalidInput, match="They have no upcoming infra-oncall shift on 2026-11-25"
        ):
            service.request_swap(
                session,
                sample_org,
                "infra-oncall",
                "U0ENG00001",
                "U0ENG00002",
                NOW,
                theirs=date(2026, 11, 25),
            )


def test_only_the_person_asked_may_answer_a_swap_and_only_once(db, sample_org):
    with db.session() as session:
        swap = service.request_swap(
            session, sample_org, "infra-oncall", "U0ENG00001", "U0ENG00005", NOW
        )
        with pytest.raises(NotAllowed):
            service.accept_swap(session, sample_org, swap.id, "U0ENG00004", NOW)
        service.decline_swap(session, sample_org, swap.id, "U0ENG00005", NOW)
        with pytest.raises(Conflict, match="declined already"):
            service.accept_swap(session, sample_org, swap.id, "U0ENG00005", NOW)


def test_a_swap_cannot_be_accepted_after_it_expires(db, sample_org):
    with db.session() as session:
        swap = service.request_swap(
            session, sample_org, "infra-oncall", "U0ENG00001", "U0ENG00005", NOW
        )
        with pytest.raises(Conflict, match="expired"):
            service.accept_swap(session, sample_org, swap.id, "U0ENG00005", NOW + timedelta(days=3))


def test_a_swap_no_longer_applies_when_the_schedule_changed(db, sample_org):
    with db.session() as session:
        swap = service.request_swap(
            session, sample_org, "infra-oncall", "U0ENG00001", "U0ENG00005", NOW
        )
        service.create_override(
            session,
            sample_org,
            "infra-oncall",
            "U0ENG00002",
            utc("2026-12-01 00:00"),
            utc("2026-12-02 00:00"),
            "U0MGR00001",
            NOW,
        )
        with pytest.raises(Conflict, match="schedule changed"):
            service.accept_swap(session, sample_org, swap.id, "U0ENG00005", NOW)


def test_changing_members_in_the_config_changes_only_future_shifts(db, sample_org):
    with db.session() as session:
        service.sync_rosters(session, sample_org, NOW)
    # Erin leaves; Fiona joins, two weeks later (Carla on call, 16-23 Nov).
    changed = parse_org(with_members("U0ENG00001, U0ENG00002, U0ENG00003, U0ENG00004, U0ENG00011"))
    later = utc("2026-11-20 12:00")
    with db.session() as session:
        changes = service.sync_rosters(session, changed, later)
        assert [c.rotation_id for c in changes] == ["infra-oncall"]
        assert changes[0].effective_at == utc("2026-11-23 15:00")
        past = service.upcoming_shifts(
            session, changed, "infra-oncall", utc("2026-11-02 15:00"), later
        )
        future = service.upcoming_shifts(
            session, changed, "infra-oncall", utc("2026-11-23 15:00"), utc("2027-01-04 15:00")
        )
        moved = service.moved_shifts(session, changed, "infra-oncall", changes[0].before, later)
    assert [s.person for s in past] == ["U0ENG00001", "U0ENG00002", "U0ENG00003"]
    # The future reads as the new config does (shift n is members[n % 5]).
    assert [s.person for s in future] == [
        "U0ENG00004",
        "U0ENG00011",
        "U0ENG00001",
        "U0ENG00002",
        "U0ENG00003",
        "U0ENG00004",
    ]
    assert {m.person for m in moved} >= {"U0ENG00005", "U0ENG00011"}
    with db.session() as session:  # recorded once: syncing again changes nothing
        assert service.sync_rosters(session, changed, later + timedelta(hours=1)) == []


def test_load_gives_each_persons_share_of_on_call_and_off_hours_time(db, sample_org):
    now = utc("2027-02-15 15:00")  # a handoff; 13 weeks back is 16 Nov 2026 15:00
    with db.session() as session:
        rows = service.load(session, sample_org, "infra-oncall", now)
    weeks = {r.person: r.on_call / timedelta(weeks=1) for r in rows}
    # 13 shifts from Carla's (index 2) on: Carla, Dev, Erin, Alice, Bob, ... in turn.
    assert weeks == {
        "U0ENG00003": 3,
        "U0ENG00004": 3,
        "U0ENG00005": 3,
        "U0ENG00001": 2,
        "U0ENG00002": 2,
    }
    assert sum(r.share for r in rows) == pytest.approx(1)
    assert sum(r.off_hours_share for r in rows) == pytest.approx(1)
    carla = next(r for r in rows if r.person == "U0ENG00003")
    assert carla.share == pytest.approx(3 / 13)
    # Off-hours is most of a week (168 h minus at most 40 business hours).
    assert timedelta(hours=3 * 128) <= carla.off_hours < timedelta(weeks=3)


def test_shifts_of_person_spans_rotations(db, sample_org):
    with db.session() as session:
        mine = service.shifts_of_person(
            session, sample_org, "U0ENG00002", NOW, NOW + timedelta(weeks=6)
        )
    assert [(s.rotation_id, s.start) for s in mine] == [
        ("infra-oncall", utc("2026-11-09 15:00")),
        ("infra-support", utc("2026-12-07 14:00")),
        ("infra-oncall", utc("2026-12-14 15:00")),
    ]
