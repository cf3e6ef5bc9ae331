"""The Block Kit check in the harness rejects what Slack would reject, so it cannot silently pass."""

from __future__ import annotations

import pytest

from tests.harness import BlockKitError, check_blocks, check_payload, check_view

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*Checkout* is down"}}
BUTTON = {
    "type": "button",
    "action_id": "page.ack",
    "value": "42",
    "text": {"type": "plain_text", "text": "Acknowledge"},
}
MODAL = {
    "type": "modal",
    "callback_id": "page.new",
    "title": {"type": "plain_text", "text": "Page someone"},
    "submit": {"type": "plain_text", "text": "Page"},
    "blocks": [
        {
            "type": "input",
            "block_id": "summary",
            "label": {"type": "plain_text", "text": "What is wrong?"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        }
    ],
}


def test_valid_blocks_and_views_pass():
    check_blocks(
        [
            {"type": "header", "text": {"type": "plain_text", "text": "Page"}},
            SECTION,
            {"type": "section", "text": SECTION["text"], "accessory": BUTTON},
            {"type": "actions", "elements": [BUTTON, {**BUTTON, "action_id": "page.resolve"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "in #platform-infra"}]},
            {"type": "divider"},
        ]
    )
    check_view(MODAL)
    check_view({"type": "home", "blocks": [SECTION]})
    # What Slack hands back (views.open answers, view_submission payloads) carries more keys.
    check_view({**MODAL, "id": "V1", "hash": "1.a", "state": {"values": {}}, "team_id": "T1"})


@pytest.mark.parametrize(
    ("blocks", "complaint"),
    [
        ([{"type": "sectoin", "text": SECTION["text"]}], "unknown block type 'sectoin'"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "3000"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], "150"),
        (
            [
                {
                    "type": "actions",
                    "elements": [{**BUTTON, "text": {**BUTTON["text"], "text": "x" * 76}}],
                }
            ],
            "75",
        ),
        ([{"type": "divider", "block_id": "x" * 256}], "255"),
        ([{**SECTION, "colour": "red"}], "unknown Block Kit keys: blocks[0].colour"),
        ([{**SECTION, "text": {**SECTION["text"], "emoj": True}}], "emoj"),
        ([{"type": "actions", "elements": [{**BUTTON, "stlye": "danger"}]}], "stlye"),
        ([{"type": "actions", "elements": [{**BUTTON, "type": "buton"}]}], "'buton'"),
        ([{"type": "section"}], "text or fields"),
        ([{"type": "actions", "elements": [{"type": "button", "action_id": "a"}]}], "text"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "*Page*"}}], "plain_text"),
        ([{"type": "actions", "elements": [BUTTON, BUTTON]}], "action_id 'page.ack' repeated"),
        ([{**SECTION, "block_id": "b"}, {"type": "divider", "block_id": "b"}], "block_id 'b'"),
        ([{"type": "divider"}] * 51, "51 blocks"),
        ({"type": "divider"}, "must be a list"),
    ],
)
def test_invalid_blocks_are_rejected(blocks, complaint):
    with pytest.raises(BlockKitError) as raised:
        check_blocks(blocks)
    assert complaint in str(raised.value)


@pytest.mark.parametrize(
    ("view", "complaint"),
    [
        ({**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}, "title"),
        ({k: v for k, v in MODAL.items() if k != "title"}, "a modal needs a title"),
        ({**MODAL, "colour": "red"}, "view.colour"),
        ({**MODAL, "type": "popup"}, "type must be"),
        ({**MODAL, "blocks": [{"type": "sectoin"}]}, "unknown block type"),
        (
            {**MODAL, "blocks": [{**MODAL["blocks"][0], "label": {"type": "mrkdwn", "text": "x"}}]},
            "plain_text",
        ),
        ({**MODAL, "submit": {"type": "mrkdwn", "text": "Go"}}, "plain_text"),
        ({"type": "home", "blocks": [{"type": "divider"}] * 101}, "100"),
        (
            {**MODAL, "blocks": [{"type": "input", "element": {"type": "plain_text_input"}}]},
            "label",
        ),
    ],
)
def test_invalid_views_are_rejected(view, complaint):
    with pytest.raises(BlockKitError) as raised:
        check_view(view)
    assert complaint in str(raised.value)


def test_a_view_may_hold_more_blocks_than_a_message():
    check_view({"type": "home", "blocks": [{"type": "divider"}] * 100})
    with pytest.raises(BlockKitError):
        check_blocks([{"type": "divider"}] * 100)


def test_payloads_are_checked_by_what_they_carry():
    check_payload("chat.postMessage", {"channel": "C1", "text": "ok", "blocks": [SECTION]})
    check_payload("chat.postMessage", {"channel": "C1", "text": "ok", "blocks": "[]"})  # form
    with pytest.raises(BlockKitError):
        check_payload("chat.postMessage", {"channel": "C1", "blocks": [{"type": "nope"}]})
    with pytest.raises(BlockKitError):
        check_payload("views.open", {"trigger_id": "t", "view": {**MODAL, "colour": 1}})
    with pytest.raises(BlockKitError, match="longer than Slack allows"):
        check_payload("chat.postMessage", {"channel": "C1", "text": "x" * 40001})


def test_a_world_fails_the_test_when_the_bot_sent_invalid_blocks(world):
    world.runtime.slack.chat_postMessage(
        channel="C0INFRA0001", text="bad", blocks=[{**SECTION, "colour": "red"}]
    )
    with pytest.raises(BlockKitError):
        world.check_payloads()
    world.fake.clear()  # so the fixture's own check at teardown passes


# ---- bot.blockkit: the pieces every capability builds with stay inside Slack's limits ----------


def test_shared_pieces_pass_the_check_at_and_beyond_slacks_limits():
    from bot import blockkit

    long_line = "word " * 200
    text = "\n".join([long_line] * 8)  # ~8,000 characters over whole lines
    card = [
        blockkit.header("h" * 400),
        blockkit.section(text, blockkit.button("b" * 100, "x.press", "v" * 3000, "danger")),
        blockkit.context("<@U0ENG00001> " + text),
        blockkit.actions(blockkit.button("Go", "x.go", "1"), block_id="k" * 300),
        blockkit.section("tagged", block_id="row:1"),
    ]
    check_blocks(card)
    assert card[1]["text"]["text"].endswith(" …")
    assert len(card[1]["text"]["text"]) <= blockkit.TEXT_LIMIT
    assert "<@U0ENG00001>" in card[2]["elements"][0]["text"]  # cut at a line, not in a token
    assert card[1]["accessory"]["text"]["text"].endswith("…")
    assert len(card[1]["accessory"]["value"]) == blockkit.BUTTON_VALUE_LIMIT
    assert card[4]["block_id"] == "row:1"


def test_plain_text_is_never_empty():
    from bot.blockkit import plain

    assert plain("", 10) == {"type": "plain_text", "text": " "}
    assert plain("abcdefghijk", 5)["text"] == "abcd…"
