"""People named by e-mail: resolved through Slack once, and an address Slack cannot resolve is
not asked about on every page, `/oncall` or handoff that names it."""

from __future__ import annotations

from bot.directory import FAILED_TTL, NOT_FOUND_TTL


def lookups(world, email: str) -> int:
    return len([c for c in world.fake.calls_to("users.lookupByEmail") if c.args["email"] == email])


def test_an_address_is_looked_up_once_then_read_from_memory(world):
    world.fake.add_user("U0NEW00001", "Nadia", "nadia@example.com")
    directory = world.runtime.directory
    assert directory.user_id("Nadia@Example.com") == "U0NEW00001"
    for _ in range(5):
        assert directory.user_id("nadia@example.com") == "U0NEW00001"
    assert lookups(world, "nadia@example.com") == 1


def test_an_address_slack_does_not_know_is_asked_again_only_after_an_hour(world):
    directory = world.runtime.directory
    for _ in range(20):  # a storm of pages naming a mistyped address
        assert directory.user_id("nobdy@example.com") == "nobdy@example.com"
    assert lookups(world, "nobdy@example.com") == 1
    world.fake.add_user("U0NEW00002", "Nobody", "nobdy@example.com")  # they join Slack
    world.clock.advance(NOT_FOUND_TTL)
    assert directory.user_id("nobdy@example.com") == "U0NEW00002"
    assert lookups(world, "nobdy@example.com") == 2


def test_a_lookup_that_failed_for_slacks_own_reasons_is_retried_after_a_minute(world):
    world.fake.add_user("U0NEW00003", "Rita", "rita@example.com")
    world.fake.fail("users.lookupByEmail", error="ratelimited")
    directory = world.runtime.directory
    assert directory.user_id("rita@example.com") == "rita@example.com"
    assert directory.user_id("rita@example.com") == "rita@example.com"
    assert lookups(world, "rita@example.com") == 1
    world.clock.advance(FAILED_TTL)
    assert directory.user_id("rita@example.com") == "U0NEW00003"


def test_many_at_once_use_memory_and_ask_slack_about_an_unknown_address_once_an_hour(world):
    """`user_ids` (every name in a `/oncall now` answer) keeps to the same rules as `user_id`."""
    world.fake.add_user("U0NEW00004", "Dana", "dana@example.com")
    directory = world.runtime.directory
    refs = ["U0ENG00001", "Dana@example.com", "nobdy@example.com"]
    assert directory.known_ids(refs) is None  # nothing resolved yet: needs the database
    for _ in range(10):
        with world.db.session() as session:
            assert directory.user_ids(refs, session) == {
                "U0ENG00001": "U0ENG00001",
                "Dana@example.com": "U0NEW00004",
                "nobdy@example.com": "nobdy@example.com",
            }
    assert lookups(world, "dana@example.com") == 1
    assert lookups(world, "nobdy@example.com") == 1
    # Both are now answered from memory, without the database or Slack.
    assert directory.known_ids(refs) == {
        "U0ENG00001": "U0ENG00001",
        "Dana@example.com": "U0NEW00004",
        "nobdy@example.com": "nobdy@example.com",
    }
    world.clock.advance(NOT_FOUND_TTL)
    assert directory.known_ids(refs) is None  # time to ask Slack about it again
    with world.db.session() as session:
        directory.user_ids(refs, session)
    assert lookups(world, "nobdy@example.com") == 2
