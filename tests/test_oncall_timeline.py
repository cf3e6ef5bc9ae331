"""The cached timeline answers exactly as the straightforward computation does, and notices every
change that affects it: in this session, after a rollback, from another replica, on reload."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import Session

from bot.config import parse_org
from bot.db import Database
from bot.oncall import lookup, service
from bot.oncall.models import Override, RosterRecord, RotationRevision
from bot.oncall.schedule import Cadence
from tests import oncall_reference as reference
from tests.bench.scale_org import WEEKDAYS, ZONES

PEOPLE = ("U0A", "U0B", "U0C", "U0D", "U0E", "a@example.com")
FIRST_DAY = date(2026, 1, 5)  # a Monday; the instants span the year's DST changes
SPAN = timedelta(days=400)


def org_text(primary: dict, secondary: dict) -> str:
    def rotation(rid: str, team: str, spec: dict, other: str) -> str:
        day = FIRST_DAY + timedelta(days=spec["offset"])
        members = ", ".join(spec["members"])
        return (
            f"  - id: {rid}\n    team: {team}\n    kind: support\n    members: [{members}]\n"
            f"    start: {day.isoformat()}\n"
            f'    handoff: {{weekday: {WEEKDAYS[day.weekday()]}, time: "{spec["at"]}"}}\n'
            f"    length: {spec['length']}\n    secondary: {other}\n"
        )

    return (
        "timezone: UTC\nteams:\n"
        f"  - {{id: one, name: One, timezone: {primary['zone']}}}\n"
        f"  - {{id: two, name: Two, timezone: {secondary['zone']}}}\n"
        "rotations:\n"
        + rotation("first", "one", primary, "second")
        + rotation("second", "two", secondary, "first")
    )


# Handoff times include ones DST skips or repeats somewhere (02:00-02:30) and odd minutes.
rotation_specs = st.fixed_dictionaries(
    {
        "zone": st.sampled_from(ZONES),
        "members": st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=5),
        "offset": st.integers(0, 6),
        "at": st.sampled_from(["00:00", "01:30", "02:00", "02:30", "03:00", "09:45", "23:59"]),
        "length": st.sampled_from(["1d", "2d", "1w", "2w"]),
    }
)
override_specs = st.lists(
    st.tuples(
        st.sampled_from(["first", "second"]),
        st.integers(0, 380 * 24),  # start, hours after the first day
        st.integers(1, 24 * 20),  # length in hours
        st.sampled_from(PEOPLE),
        st.booleans(),  # cancelled
        st.sampled_from(["cover", "swap"]),
    ),
    max_size=8,
)
instant_offsets = st.lists(st.integers(0, int(SPAN.total_seconds())), min_size=1, max_size=12)


def _reset(session: Session) -> None:
    for table in (Override, RosterRecord, RotationRevision):
        session.exec(delete(table))  # type: ignore[call-overload]


def _instants(org, overrides, offsets) -> list[datetime]:
    origin = datetime.combine(FIRST_DAY, time(), UTC) - timedelta(days=3)
    instants = [origin + timedelta(seconds=s) for s in offsets]
    for rid in ("first", "second"):  # exactly at handoffs, and just before
        cadence = Cadence.of(org.rotation(rid), org.rotation_zone(rid))
        for index in (0, 1, 2, 9, 30):
            handoff = cadence.handoff(index)
            instants += [handoff, handoff - timedelta(microseconds=1)]
    for override in overrides:  # exactly at override edges
        instants += [override.start, override.end, override.end - timedelta(microseconds=1)]
    return sorted(instants)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    primary=rotation_specs,
    secondary=rotation_specs,
    overrides=override_specs,
    offsets=instant_offsets,
    roster_change=st.one_of(st.none(), st.tuples(st.integers(1, 40), st.permutations(PEOPLE))),
)
def test_the_timeline_answers_as_the_reference_does(
    db, primary, secondary, overrides, offsets, roster_change
):
    org = parse_org(org_text(primary, secondary))
    origin = datetime.combine(FIRST_DAY, time(), UTC)
    with db.session() as session:
        _reset(session)
    with db.session() as session:
        rows = []
        for number, (rid, start, hours, person, cancelled, kind) in enumerate(overrides):
            begin = origin + timedelta(hours=start)
            rows.append(
                Override(
                    rotation_id=rid,
                    start=begin,
                    end=begin + timedelta(hours=hours),
                    person=person,
                    kind=kind,
                    created_by="U0A",
                    # Not in id order: a newer override wins, by creation time.
                    created_at=origin - timedelta(minutes=number * 7 % 5),
                    cancelled_at=origin if cancelled else None,
                )
            )
        session.add_all(rows)
        if roster_change is not None:
            from_index, people = roster_change
            session.add(
                RosterRecord(
                    rotation_id="first",
                    from_index=0,
                    members=list(org.rotation("first").members),
                    recorded_at=origin,
                )
            )
            session.add(
                RosterRecord(
                    rotation_id="first",
                    from_index=from_index,
                    members=list(people[:3]),
                    recorded_at=origin + timedelta(days=from_index),
                )
            )
        session.flush()
        instants = _instants(org, rows, offsets)
        # In the session that made the changes (not committed yet), then in a fresh one.
        _compare(session, org, instants)
    with db.session() as session:
        _compare(session, org, instants)
        for rid in ("first", "second"):
            fast = lookup.holders_over(session, org, rid, instants)
            assert [h.at(i) for h, i in zip(fast, instants, strict=True)] == [
                reference.who_is_on_call(session, org, rid, i) for i in instants
            ]


def _compare(session: Session, org, instants: list[datetime]) -> None:
    for rid in ("first", "second"):
        for instant in instants:
            expected = reference.who_is_on_call(session, org, rid, instant)
            assert service.who_is_on_call(session, org, rid, instant) == expected, instant
        for start, end in zip(instants, instants[3:], strict=False):
            window = reference.timeline(session, org, rid, start, end)
            assert service.timeline(session, org, rid, start, end) == window, (start, end)


# ---- invalidation -----------------------------------------------------------------------------

ORG = org_text(
    {
        "zone": "Europe/London",
        "members": ["U0A", "U0B"],
        "offset": 0,
        "at": "09:00",
        "length": "1w",
    },
    {"zone": "Asia/Kathmandu", "members": ["U0C"], "offset": 1, "at": "10:00", "length": "1w"},
)
AT = datetime(2026, 3, 3, 12, tzinfo=UTC)  # in shift 8: U0A's


def _cover(rotation: str = "first", person: str = "U0E") -> Override:
    return Override(
        rotation_id=rotation,
        start=AT - timedelta(hours=1),
        end=AT + timedelta(hours=1),
        person=person,
        created_by="U0A",
        created_at=AT - timedelta(days=1),
    )


def test_a_change_from_another_replica_is_seen_at_the_next_read(db):
    org = parse_org(ORG)
    other = Database(db.url)  # another process's engine on the same database
    try:
        with db.session() as session:
            assert service.who_is_on_call(session, org, "first", AT).primary == "U0A"
        with other.session() as session:
            session.add(_cover())
        with db.session() as session:
            assert service.who_is_on_call(session, org, "first", AT).primary == "U0E"
        with other.session() as session:
            (override,) = service.overrides_of(session, "first", AT - timedelta(days=1))
            override.cancelled_at = AT - timedelta(days=1)
        with db.session() as session:
            assert service.who_is_on_call(session, org, "first", AT).primary == "U0A"
    finally:
        other.dispose()


def test_a_rolled_back_change_leaves_no_trace_in_the_cache(db):
    org = parse_org(ORG)
    session = Session(db.engine)
    session.add(_cover(person="U0E"))
    session.flush()
    assert service.who_is_on_call(session, org, "first", AT).primary == "U0E"
    session.rollback()
    session.close()
    with db.session() as session:
        assert service.who_is_on_call(session, org, "first", AT).primary == "U0A"
        session.add(_cover(person="U0D"))  # a different change after the rolled-back one
    with db.session() as session:
        assert service.who_is_on_call(session, org, "first", AT).primary == "U0D"


def test_a_config_reload_and_a_roster_change_are_seen(db):
    org = parse_org(ORG)
    with db.session() as session:
        assert service.who_is_on_call(session, org, "first", AT).primary == "U0A"
    reloaded = parse_org(ORG.replace("members: [U0A, U0B]", "members: [U0D, U0B]"))
    with db.session() as session:
        assert service.who_is_on_call(session, reloaded, "first", AT).primary == "U0D"
        # Recording the change keeps the past and the current shift as they were.
        service.sync_rosters(session, org, AT - timedelta(days=400))
        service.sync_rosters(session, reloaded, AT)
        assert service.who_is_on_call(session, reloaded, "first", AT).primary == "U0A"
        later = AT + timedelta(weeks=2)
        assert service.who_is_on_call(session, reloaded, "first", later) == (
            reference.who_is_on_call(session, reloaded, "first", later)
        )


def test_the_secondary_comes_from_its_own_timeline(db):
    org = parse_org(ORG)
    with db.session() as session:
        current = service.who_is_on_call(session, org, "first", AT)
        assert (current.secondary, current.secondary_rotation_id) == ("U0C", "second")
        session.add(_cover(rotation="second", person="U0D"))
        session.flush()
        assert service.who_is_on_call(session, org, "first", AT).secondary == "U0D"


def test_back_to_back_covers_by_one_person_name_the_cover_in_force(db):
    """One person covering the end of a shift and the start of the next is one stretch; the
    override it names is the nearest one at or before the instant, as the reference says."""
    org = parse_org(ORG)
    handoff = Cadence.of(org.rotation("first"), org.rotation_zone("first")).handoff(9)
    with db.session() as session:
        first, second = _cover(person="U0E"), _cover(person="U0E")
        first.start, first.end = handoff - timedelta(hours=2), handoff
        second.start, second.end = handoff, handoff + timedelta(hours=3)
        session.add_all([first, second])
        session.flush()
        for at in (handoff - timedelta(hours=1), handoff + timedelta(hours=1), handoff):
            fast = service.who_is_on_call(session, org, "first", at)
            assert fast == reference.who_is_on_call(session, org, "first", at)
        later = service.who_is_on_call(session, org, "first", handoff + timedelta(hours=1))
        assert later.override_id == second.id
        assert (later.shift_start, later.shift_end) == (first.start, second.end)


def test_a_change_not_yet_flushed_is_seen_in_its_own_session(db):
    """The revision tokens are read with a bare statement only when the session has nothing to
    flush; a pending change is flushed first (bumping its rotation's token), as the ORM does."""
    org = parse_org(ORG)
    with db.session() as session:
        session.add(_cover(person="U0E"))  # pending: the session has not flushed it
        assert service.who_is_on_call(session, org, "first", AT).primary == "U0E"
    with db.session() as session:
        assert service.who_is_on_call(session, org, "first", AT).primary == "U0E"
        (cover,) = service.overrides_of(session, "first", AT - timedelta(days=1))
        cover.person = "U0D"  # dirty, not flushed, in a new transaction
        assert service.who_is_on_call(session, org, "first", AT).primary == "U0D"
