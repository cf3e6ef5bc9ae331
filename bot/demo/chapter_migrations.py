"""Demo chapter: a catalog import, a migration with a dependent step, its announcement, a nudge,
a block that becomes a support ticket, and the burn-up chart saved to a file."""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.platform_migrations import catalog, flows, loading

if TYPE_CHECKING:
    from bot.demo.story import Story

LIAM = "U0APP00001"  # checkout team
MIA = "U0APP00002"  # reports team
VERA = "U0VP000001"  # VP Platform, the sponsor
MAYA = "U0MGR00001"  # infra manager (the platform team)
DEMO = Path(str(resources.files("bot.demo")))
CHART = Path(tempfile.gettempdir()) / "opsbot-demo" / "pg16-upgrade-burn-up.png"


def chapter_migrations(story: Story) -> None:
    n = story.narrator
    world = story.world
    n.chapter("Platform migrations: targeted, dependency-aware, without a wall of shame")

    n.scene("The platform team imports the Backstage catalog: who owns which service.")
    entities, notes = catalog.read_entities([DEMO / "catalog"])
    with world.db.session() as session:
        result = catalog.import_catalog(session, entities, world.clock.now())
    for line in result.summary().splitlines()[:1] + notes:
        n.say(line)

    n.scene("They load the PostgreSQL 16 migration (draft) and pilot it with the data team.")
    spec = loading.read_migration_file(DEMO / "migration-pg16.yaml", world.org)
    with world.db.session() as session:
        loading.save_spec(session, spec, world.clock.now(), by=MAYA)
        flows.request_sync(session, spec.id, world.clock.now())
    story.world.tick()
    story.slack.command("/migration", "pilot pg16-upgrade", user=MAYA)
    n.show()

    n.scene("The pilot went well; Maya activates it for everyone.")
    story.slack.command("/migration", "activate pg16-upgrade", user=MAYA)
    n.show()

    n.scene(f"{n.name(LIAM)} upgrades the driver of checkout-api and presses Done.")
    _press(story, LIAM, "migration.done", "checkout-api", "driver")
    n.say("The next step of checkout-api is released to him at once, with its own instructions.")
    n.show()

    n.scene(f"{n.name(LIAM)} does billing-db's driver too; then CI reports both switches done.")
    _press(story, LIAM, "migration.done", "billing-db", "driver")
    for service in ("checkout-api", "billing-db"):
        response = world.http.post(
            "/migrations/pg16-upgrade/progress",
            json={"service": service, "step": "switch", "state": "done"},
            headers={"Authorization": f"Bearer {world.settings.alert_token}"},
        )
        world.settle()
        n.say(
            f"POST /migrations/pg16-upgrade/progress ({service} switch done): "
            f"{response.status_code}, released {json.dumps(response.json().get('released'))}"
        )
    n.say("checkout-api's last step waited on billing-db's switch too: now it opens.")
    n.show()

    n.scene("A month passes (the rest of the org's week is left out here).")
    n.show()
    story.advance(timedelta(weeks=4, days=1))
    _show_migration_messages(story)
    n.say("One DM per owner, over all their migrations, inside their own working hours.")

    n.scene(f"{n.name(MIA)} is blocked: the new driver breaks her ETL's bulk loader.")
    _press(story, MIA, "migration.blocked", "reports-etl", "driver")
    view = _last_view(story)
    story.slack.submit_view(
        view, MIA, {"reason": {"value": "psycopg 3 drops the COPY API our bulk loader uses"}}
    )
    world.settle()
    n.say("The block becomes a ticket in the platform's support queue; no reminders meanwhile.")
    n.show()

    n.scene(f"{n.name(VERA)}, the sponsor, asks how the migration is going.")
    story.slack.command("/migration", "status pg16-upgrade", user=VERA)
    n.show()
    chart = _saved_chart(story)
    n.say(f"The burn-up chart was uploaded to her DM; a copy is saved at {chart}")


def _press(story: Story, user: str, action_id: str, service: str, step: str) -> None:
    """Press a button of the newest DM to `user` that has one for this service and step."""
    for message in reversed(story.fake.dms(user)):
        for block in message.blocks or []:
            for element in block.get("elements", []):
                value = element.get("value", "")
                if element.get("action_id") != action_id or not value.startswith("{"):
                    continue
                found = json.loads(value)
                if (found.get("s"), found.get("t")) != (service, step):
                    continue
                story.slack.action(
                    action_id,
                    user,
                    value=value,
                    block_id=block.get("block_id", "actions"),
                    channel=message.channel,
                    message={
                        "type": "message",
                        "ts": message.ts,
                        "text": message.text,
                        "blocks": message.blocks,
                    },
                )
                story.world.settle()
                return
    raise AssertionError(f"no {action_id} button for {service}/{step} in DMs to {user}")


def _show_migration_messages(story: Story) -> None:
    """Only what this chapter is about: nudges, summaries and notices of migrations."""
    n = story.narrator
    calls = story.fake.calls[n._seen_calls :]
    n._seen_calls = len(story.fake.calls)
    n._seen_responses = len(story.fake.responses)
    for call in calls:
        if call.method == "chat.postMessage" and "migration" in json.dumps(call.args).lower():
            line = n.render_call(call)
            if line:
                story.narrator.out.write(line + "\n")


def _last_view(story: Story) -> dict[str, Any]:
    view = story.fake.calls_to("views.open")[-1].args["view"]
    return json.loads(view) if isinstance(view, str) else view


def _saved_chart(story: Story) -> Path:
    completed = story.fake.calls_to("files.completeUploadExternal")[-1].args["files"]
    files = json.loads(completed) if isinstance(completed, str) else completed
    CHART.parent.mkdir(parents=True, exist_ok=True)
    CHART.write_bytes(story.fake.files[files[0]["id"]]["content"])
    return CHART
