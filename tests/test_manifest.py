"""slack-manifest.yaml is what `opsbot manifest` prints, and it covers what the bot registers."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.cli import main
from bot.manifest import build_manifest

ROOT = Path(__file__).resolve().parents[1]


def test_committed_manifest_is_current(capsys, monkeypatch):
    monkeypatch.delenv("OPSBOT_PUBLIC_URL", raising=False)
    assert main(["manifest"]) == 0
    printed = capsys.readouterr().out
    committed = (ROOT / "slack-manifest.yaml").read_text()
    assert printed == committed, "run `opsbot manifest > slack-manifest.yaml`"


def test_every_manifest_command_answers_help(world):
    manifest = build_manifest()
    for command in manifest["features"].get("slash_commands", []):
        response = world.slack.command(command["command"], "help", user="U0ENG00001")
        assert response.status_code == 200
        reply = world.acks[-1] if world.acks else world.last_response()
        assert command["command"] in str(reply), f"{command['command']} help does not name itself"
    assert yaml.safe_load(yaml.safe_dump(manifest)) == manifest
