"""Deadlines as people meet them: a DST change between two deadlines, a cycle across New Year,
and the selection window counted in business time around the holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.wins_world import DEVEX_CH, DEVEX_MGR, DIRECTOR, NY, make, texts


def digests_in(world, channel) -> int:
    return len(world.fake.posts(channel))


def step_to(world, local: datetime) -> None:
    world.advance(local - world.clock.now())


def test_deadline_stays_at_15_00_local_across_the_spring_dst_change(world_factory):
    world = make(
        world_factory, datetime(2027, 2, 22, 10, 0, tzinfo=NY), first_deadline="2027-03-03 15:00"
    )
    step_to(world, datetime(2027, 3, 3, 14, 59, tzinfo=NY))
    assert digests_in(world, DEVEX_CH) == 0
    step_to(world, datetime(2027, 3, 3, 15, 0, 30, tzinfo=NY))
    assert digests_in(world, DEVEX_CH) == 1
    assert world.clock.now().astimezone(UTC).hour == 20  # 15:00 EST
    # Clocks spring forward on 14 Mar; the next deadline is still 15:00 local, 19:00 UTC.
    step_to(world, datetime(2027, 3, 17, 14, 59, tzinfo=NY))
    assert digests_in(world, DEVEX_CH) == 1
    step_to(world, datetime(2027, 3, 17, 15, 0, 30, tzinfo=NY))
    assert digests_in(world, DEVEX_CH) == 2
    assert world.clock.now().astimezone(UTC).hour == 19  # 15:00 EDT
    # Reminders moved with it: 2 days and 3 hours before, local time.
    reminders = [m for m in world.fake.dms(DEVEX_MGR) if "are due" in m.text]
    assert len(reminders) == 4


def test_a_cycle_across_new_year_reminds_and_closes_on_time(world_factory):
    world = make(
        world_factory, datetime(2026, 12, 21, 10, 0, tzinfo=NY), first_deadline="2026-12-23 15:00"
    )
    step_to(world, datetime(2026, 12, 23, 15, 0, 30, tzinfo=NY))
    assert digests_in(world, DEVEX_CH) == 1
    # The director's window opens at the deadline: one business day, so Thu 24 Dec 15:00.
    ask = [m for m in world.fake.dms(DIRECTOR) if "Choose highlights" in str(m.blocks)]
    assert ask and "24 Dec" in texts(ask)
    # The next cycle runs across New Year (and its holidays) to Wed 6 Jan 15:00.
    step_to(world, datetime(2027, 1, 4, 14, 59, tzinfo=NY))
    before = len([m for m in world.fake.dms(DEVEX_MGR) if "are due" in m.text])
    step_to(world, datetime(2027, 1, 4, 15, 0, 30, tzinfo=NY))
    after = [m for m in world.fake.dms(DEVEX_MGR) if "are due" in m.text]
    assert len(after) == before + 1
    assert "06 Jan" in after[-1].text or "6 Jan" in after[-1].text
    step_to(world, datetime(2027, 1, 6, 15, 0, 30, tzinfo=NY))
    assert digests_in(world, DEVEX_CH) == 2
    assert "06 Jan 2027" in texts(world.fake.posts(DEVEX_CH)[-1:])


def test_a_restart_after_the_deadline_still_closes_the_cycle_once(world_factory):
    world = make(world_factory, datetime(2026, 11, 25, 14, 0, tzinfo=NY))
    # The bot was down over the deadline: the clock jumps, then one tick catches up.
    world.clock.set(datetime(2026, 11, 25, 18, 0, tzinfo=NY))
    world.tick()
    world.tick()
    assert digests_in(world, DEVEX_CH) == 1
    world.advance(timedelta(hours=1))
    assert digests_in(world, DEVEX_CH) == 1
