"""The ownership catalog: Backstage imports, re-imports, malformed files, and who owns a service."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from sqlmodel import select

from bot.outbox import OutboxMessage
from bot.platform_migrations import catalog
from bot.platform_migrations.models import CatalogEntity

DEMO_CATALOG = Path(str(resources.files("bot.demo").joinpath("catalog")))


def import_paths(db, paths, now):
    entities, notes = catalog.read_entities(paths)
    with db.session() as session:
        result = catalog.import_catalog(session, entities, now)
    result.notes = notes
    return result


def stored(db) -> dict[tuple[str, str], CatalogEntity]:
    with db.session() as session:
        return {(e.kind, e.name): e for e in session.exec(select(CatalogEntity)).all()}


def test_import_reads_components_systems_groups_and_users_from_a_directory(db, world):
    result = import_paths(db, [DEMO_CATALOG], world.clock.now())
    entities = stored(db)
    checkout = entities[("component", "checkout-api")]
    assert checkout.owner == "checkout-team"  # from group:default/checkout-team
    assert checkout.system == "payments"
    assert checkout.tags == ["postgres", "python"]
    assert checkout.lifecycle == "production"
    assert entities[("component", "billing-db")].owner == "checkout-team"  # group:checkout-team
    assert entities[("user", "liam")].email == "liam@example.com"
    assert entities[("user", "liam")].member_of == ["checkout-team"]
    assert ("system", "finance") in entities
    assert "component checkout-api" in result.added
    assert any("skipped API 'checkout-openapi'" in n for n in result.notes)


def test_reimport_updates_in_place_and_reports_added_changed_and_removed(db, world, tmp_path):
    import_paths(db, [DEMO_CATALOG], world.clock.now())
    before = stored(db)[("component", "checkout-api")].id
    changed = tmp_path / "catalog"
    changed.mkdir()
    (changed / "teams.yaml").write_text((DEMO_CATALOG / "teams.yaml").read_text())
    services = (DEMO_CATALOG / "services.yaml").read_text()
    services = services.replace("tags: [postgres, python]", "tags: [postgres, python, pg16]")
    services = services.split(
        "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: wiki"
    )[0]
    services += (
        "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: search, "
        "tags: [postgres]}\nspec: {type: service, owner: data}\n"
    )
    (changed / "services.yaml").write_text(services)
    result = import_paths(db, [changed], world.clock.now())
    assert result.added == ["component search"]
    assert result.changed == ["component checkout-api (tags)"]
    assert "component wiki" in result.removed
    after = stored(db)
    assert after[("component", "checkout-api")].id == before  # updated in place
    assert after[("component", "checkout-api")].tags == ["pg16", "postgres", "python"]
    assert ("component", "wiki") not in after


def test_a_malformed_file_names_path_and_line_and_leaves_the_catalog_unchanged(db, world, tmp_path):
    import_paths(db, [DEMO_CATALOG], world.clock.now())
    before = {k: (e.owner, e.tags) for k, e in stored(db).items()}
    good = tmp_path / "good.yaml"
    good.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: newcomer}\n"
        "spec: {owner: data}\n"
    )
    bad = tmp_path / "zz-bad.yaml"
    bad.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: ok}\n"
        "spec: {owner: data}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\n"
        "metadata:\n  name: broken\n  tags: [a, b\nspec: {owner: data}\n"
    )
    with pytest.raises(catalog.CatalogFileError) as raised:
        import_paths(db, [good, bad], world.clock.now())
    assert raised.value.path == str(bad)
    assert raised.value.line == 11
    assert f"{bad}:11" in str(raised.value)
    assert {k: (e.owner, e.tags) for k, e in stored(db).items()} == before


def test_a_component_without_an_owner_is_refused_at_its_line(tmp_path):
    path = tmp_path / "catalog-info.yaml"
    path.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: orphan}\n"
        "spec:\n  type: service\n"
    )
    with pytest.raises(catalog.CatalogFileError) as raised:
        catalog.read_entities([path])
    assert raised.value.line == 4
    assert "needs spec.owner" in str(raised.value)


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("group:default/checkout", "checkout"),
        ("group:checkout", "checkout"),
        ("checkout", "checkout"),
        ("user:default/Liam", "user:liam"),
        ("", None),
    ],
)
def test_owner_references_in_every_backstage_spelling(ref, name):
    assert catalog.ref_name(ref) == name


def owner(world, service):
    with world.db.session() as session:
        return catalog.owner_of(
            session, world.org, world.runtime.directory, service, world.clock.now()
        )


def test_a_group_that_is_a_config_team_is_that_team(world):
    import_paths(world.db, [DEMO_CATALOG], world.clock.now())
    found = owner(world, "warehouse")
    assert found.team_id == "data"
    assert found.people == ["U0ENG00011", "U0ENG00012", "U0ENG00013", "U0ENG00014"]
    assert not found.drifted


def test_other_groups_reach_people_through_their_users_emails(world):
    import_paths(world.db, [DEMO_CATALOG], world.clock.now())
    assert owner(world, "checkout-api").people == ["U0APP00001"]
    assert owner(world, "reports-etl").people == ["U0APP00002"]
    lookups = len(world.fake.calls_to("users.lookupByEmail"))
    owner(world, "checkout-api")
    assert len(world.fake.calls_to("users.lookupByEmail")) == lookups  # cached


def test_drift_falls_back_to_the_owning_teams_manager_and_tells_the_platform_team_once(world):
    import_paths(world.db, [DEMO_CATALOG], world.clock.now())
    first = owner(world, "ledger")  # finance-team's only user has left
    again = owner(world, "ledger")
    assert first.drifted and again.drifted
    assert first.team_id == "data"  # the team owning the ledger's system
    assert first.people == ["U0MGR00002"]  # Tom, the data manager
    world.settle()
    told = [m for m in world.fake.posts("C0INFRA0001") if "Ownership drift" in m.text]
    assert len(told) == 1
    assert "ledger" in told[0].text and "finance-team" in told[0].text
    with world.db.session() as session:
        keys = [m.key for m in session.exec(select(OutboxMessage)).all()]
    assert sum(k.startswith("migration:drift:ledger") for k in keys) == 1
