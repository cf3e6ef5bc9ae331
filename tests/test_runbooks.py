"""The runbook library: front matter checked, alerts looked up, requests ranked with BM25, files
re-read when they change, and one index that pages and support requests share."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from bot.paging import service as paging
from bot.runbooks import InvalidRunbook, RunbookIndex, parse_runbook, runbook_index, runbooks_dir
from bot.runbooks.bm25 import BM25, tokenize
from bot.support import service as support

RUNBOOKS = {
    "how-to-request-database-access.md": """---
title: How to request database access
keywords: [postgres, database, access, credentials, read replica]
owner_team: infra
---
# How to request database access

Ask for read access to a Postgres database through the access portal; approvals take a day.
Production write access needs a ticket with your manager's approval.
""",
    "deploy-rollback.md": """---
title: Roll back a deployment
keywords: [deploy, rollback, release]
owner_team: infra
---
Use `deployctl rollback <service>` to return to the previous release. Check the dashboard
afterwards. Deployments that changed the database schema need the migration reverted first.
""",
    "disk-full.md": """---
title: Node disk full
alerts: [NodeDiskFull]
keywords: [disk, volume, storage]
owner_team: infra
---
Free space by pruning images. The database volume is separate and is never pruned.
""",
    "README.md": "Not a runbook.",
}


def make_index(tmp_path: Path) -> RunbookIndex:
    for name, text in RUNBOOKS.items():
        (tmp_path / name).write_text(text)
    return RunbookIndex(tmp_path)


def touch_later(path: Path) -> None:
    """Give a rewritten file a newer mtime even on filesystems with coarse timestamps."""
    future = time.time() + 5
    os.utime(path, (future, future))


# ---- BM25 -------------------------------------------------------------------------------------


def test_tokenize_drops_stopwords_and_folds_plurals():
    assert tokenize("How do I get access to the Databases?") == ["access", "database"]
    assert tokenize("Queries and policies") == ["query", "policy"]


def test_bm25_prefers_the_document_where_a_rare_term_is_dense():
    docs = [tokenize("database access portal"), tokenize("deploy rollback release")]
    docs.append(tokenize("a very long document that mentions database once among many other words"))
    hits = BM25(docs).rank(tokenize("database access"))
    assert [h.index for h in hits] == [0, 2]
    assert hits[0].score > hits[1].score


def test_bm25_length_normalisation_favours_the_shorter_of_two_equal_matches():
    docs = [tokenize("rollback " + "filler " * 40), tokenize("rollback steps")]
    assert [h.index for h in BM25(docs).rank(["rollback"])] == [1, 0]


# ---- front matter -----------------------------------------------------------------------------


def test_bm25_of_counted_documents_ranks_as_bm25_of_their_terms():
    docs = [tokenize(t) for t in ("database access how to", "rollback a deploy", "database")]
    counted = BM25.of_counts([Counter(d) for d in docs], [len(d) for d in docs])
    for query in (["database"], ["rollback", "deploy"], ["database", "access"], ["nothing"]):
        assert counted.rank(query, limit=5) == BM25(docs).rank(query, limit=5)


def test_a_runbook_without_a_title_is_refused():
    with pytest.raises(InvalidRunbook, match="title"):
        parse_runbook("x", "---\nalerts: [A]\n---\nbody")


def test_a_runbook_no_alert_or_request_could_find_is_refused():
    with pytest.raises(InvalidRunbook, match="alerts or keywords"):
        parse_runbook("x", "---\ntitle: T\n---\nbody")


def test_alerts_must_be_a_list_of_names():
    with pytest.raises(InvalidRunbook, match="alerts must be a list of names"):
        parse_runbook("x", "---\ntitle: T\nalerts: {A: 1}\n---\nbody")


def test_keywords_may_be_one_comma_separated_string_and_numbers_are_names():
    runbook = parse_runbook("x", "---\ntitle: T\nkeywords: disk, volume\nalerts: [502]\n---\nb")
    assert runbook.keywords == ("disk", "volume")
    assert runbook.alerts == ("502",)


def test_a_runbook_keeps_its_owner_url_and_body():
    runbook = parse_runbook(
        "disk-full",
        "---\ntitle: ' Disk full '\nkeywords: [disk]\nowner_team: infra\n"
        "url: https://wiki.example.com/disk\n---\n\n# Disk full\n\nPrune images.\n",
    )
    assert (runbook.slug, runbook.title, runbook.file_name) == (
        "disk-full",
        "Disk full",
        "disk-full.md",
    )
    assert (runbook.owner_team, runbook.url) == ("infra", "https://wiki.example.com/disk")
    assert runbook.body == "# Disk full\n\nPrune images."


def test_broken_files_are_listed_as_problems_and_do_not_hide_the_others(tmp_path):
    index = make_index(tmp_path)
    (tmp_path / "untitled.md").write_text("---\nkeywords: [x]\n---\nbody")
    (tmp_path / "bad-yaml.md").write_text("---\ntitle: [unclosed\n---\nbody")
    (tmp_path / "binary.md").write_bytes(b"\xff\xfe\x00")
    problems = index.problems
    assert len(problems) == 3
    assert any(p.startswith("untitled.md: front matter needs a title") for p in problems)
    assert any(p.startswith("bad-yaml.md: front matter is not valid YAML") for p in problems)
    assert any(p.startswith("binary.md: ") for p in problems)
    assert {r.slug for r in index.runbooks} == {
        "how-to-request-database-access",
        "deploy-rollback",
        "disk-full",
    }


def test_readme_is_not_a_runbook(tmp_path):
    index = make_index(tmp_path)
    assert "README" not in {r.slug for r in index.runbooks}
    assert index.problems == []


def test_excerpt_is_the_first_paragraph_of_prose(tmp_path):
    runbook = make_index(tmp_path).get("how-to-request-database-access")
    assert runbook is not None
    assert runbook.excerpt.startswith("Ask for read access")
    assert "# How to request" not in runbook.excerpt


def test_a_long_excerpt_is_shortened():
    runbook = parse_runbook("x", "---\ntitle: T\nkeywords: [k]\n---\n" + "word " * 100)
    assert len(runbook.excerpt) == 280 and runbook.excerpt.endswith("...")


# ---- the shipped runbooks -----------------------------------------------------------------------


def test_the_shipped_runbooks_all_parse_and_name_their_alerts():
    index = RunbookIndex(runbooks_dir())
    assert index.problems == []
    assert len(index.runbooks) >= 3
    for runbook in index.runbooks:
        assert runbook.title and runbook.owner_team and runbook.body
        assert runbook.alerts or runbook.keywords  # how-to runbooks (support) have no alerts
    assert sum(bool(r.alerts) for r in index.runbooks) >= 3
    assert index.for_alert("KubePodCrashLooping").slug == "kube-pod-crashlooping"
    assert index.for_alert("kubepodcrashlooping") is None  # alert names are case-sensitive
    assert index.for_alert("NoSuchAlert") is None


def test_a_page_without_an_alert_name_finds_a_runbook_by_keywords():
    index = RunbookIndex(runbooks_dir())
    assert index.find(None, "Checkout returns 502 at the ingress").slug == "ingress-5xx"
    assert index.find(None, "The coffee machine is empty") is None


def test_a_word_shared_only_with_a_runbooks_body_does_not_put_it_on_a_page():
    index = RunbookIndex(runbooks_dir())
    # "backup" appears in the replication-lag runbook's body, so search ranks it, but the page
    # is not about replication lag.
    assert [m.runbook.slug for m in index.search("Nightly backup failed")][:1] == [
        "postgres-replication-lag"
    ]
    assert index.for_text("Nightly backup failed") is None


def test_an_alert_name_wins_over_the_text():
    index = RunbookIndex(runbooks_dir())
    found = index.find("NodeFilesystemAlmostOutOfSpace", "Checkout returns 502 at the ingress")
    assert found.slug == "node-disk-filling"


# ---- search -------------------------------------------------------------------------------------


def test_how_to_question_finds_the_database_access_runbook_first(tmp_path):
    matches = make_index(tmp_path).search("How can I get read access to the orders postgres db?")
    assert matches[0].runbook.slug == "how-to-request-database-access"
    assert matches[0].runbook.title == "How to request database access"


def test_rollback_question_ranks_the_rollback_runbook_first(tmp_path):
    matches = make_index(tmp_path).search(
        "my deploy went bad, how do I roll it back to the last release"
    )
    assert matches[0].runbook.slug == "deploy-rollback"


def test_unrelated_request_gets_no_suggestion(tmp_path):
    assert (
        make_index(tmp_path).search("Can someone review my pull request for the wiki theme") == []
    )


def test_a_much_weaker_runner_up_is_not_offered(tmp_path):
    matches = make_index(tmp_path).search("read access to the orders postgres database")
    assert [m.runbook.slug for m in matches] == ["how-to-request-database-access"]


def test_an_empty_or_missing_directory_answers_nothing(tmp_path):
    for index in (RunbookIndex(tmp_path), RunbookIndex(tmp_path / "missing")):
        assert index.runbooks == [] and index.problems == []
        assert index.search("database access") == []
        assert index.find("NodeDiskFull", "disk full") is None


# ---- refresh on change --------------------------------------------------------------------------


def test_index_picks_up_a_new_runbook_without_a_restart(tmp_path):
    index = make_index(tmp_path)
    assert index.search("kafka consumer lag") == []
    path = tmp_path / "kafka-lag.md"
    path.write_text(
        "---\ntitle: Kafka consumer lag\nkeywords: [kafka, lag]\n---\nScale consumers.\n"
    )
    touch_later(path)
    assert index.search("kafka consumer lag")[0].runbook.slug == "kafka-lag"


def test_an_edited_runbook_answers_its_new_alert_and_a_removed_one_is_gone(tmp_path):
    index = make_index(tmp_path)
    assert index.for_alert("NodeDiskFull").slug == "disk-full"
    path = tmp_path / "disk-full.md"
    path.write_text(RUNBOOKS["disk-full.md"].replace("[NodeDiskFull]", "[NodeDiskFilling]"))
    touch_later(path)
    assert index.for_alert("NodeDiskFull") is None
    assert index.for_alert("NodeDiskFilling").slug == "disk-full"
    path.unlink()
    assert index.get("disk-full") is None
    assert index.for_alert("NodeDiskFilling") is None


def test_a_runbook_fixed_after_a_mistake_comes_back(tmp_path):
    index = make_index(tmp_path)
    path = tmp_path / "kafka-lag.md"
    path.write_text("---\nkeywords: [kafka]\n---\nScale consumers.\n")
    touch_later(path)
    assert index.problems == ["kafka-lag.md: front matter needs a title"]
    path.write_text("---\ntitle: Kafka consumer lag\nkeywords: [kafka]\n---\nScale consumers.\n")
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert index.problems == []
    assert index.get("kafka-lag").title == "Kafka consumer lag"


# ---- one index per runtime ----------------------------------------------------------------------


def test_the_runtime_makes_one_index_over_the_runbooks_directory_on_first_use(world):
    assert "runbooks" not in world.runtime.extras
    index = runbook_index(world.runtime)
    assert index is runbook_index(world.runtime)
    assert index.directory == runbooks_dir()


REDIS = """---
title: Redis cache evicting keys
keywords: [redis, cache, eviction]
owner_team: infra
---
The cache is full and Redis evicts keys before they expire; hit rate drops.
"""


def test_pages_and_support_requests_answer_from_the_same_index(world, tmp_path):
    world.runtime.extras["runbooks"] = RunbookIndex(tmp_path)
    (tmp_path / "redis-eviction.md").write_text(REDIS)
    with world.db.session() as session:
        page = paging.trigger_page(
            world.runtime, session, policy_id="infra-default", summary="Redis evicting keys"
        )
        assert page.runbook == "redis-eviction"
    world.settle()
    world.slack.message("C0HELP00001", "U0APP00001", "The redis cache evicts our sessions")
    with world.db.session() as session:
        view = support.card(world.runtime, session, support.get_ticket(session, 1))
    assert [m.runbook.slug for m in view.runbooks] == ["redis-eviction"]
    assert "redis-eviction.md" in json.dumps([m.blocks for m in world.fake.posts("C0HELP00001")])


def test_a_page_without_an_alert_name_prefers_an_operational_runbook_over_a_how_to():
    index = RunbookIndex(runbooks_dir())  # the shipped runbooks, how-to guides included
    runbook = index.for_text("postgres replica lagging")
    assert runbook is not None and runbook.slug == "postgres-replication-lag"


def test_a_support_request_sharing_only_common_words_with_runbooks_gets_no_suggestion(world):
    # "team", "every", "return" appear in runbook bodies, so BM25 ranks them; none is an answer.
    index = RunbookIndex(runbooks_dir())
    world.runtime.extras["runbooks"] = index
    text = "our team gets a return code every time we build"
    assert index.search(text)  # what the card offered before the guard
    world.slack.message("C0HELP00001", "U0APP00001", text)
    with world.db.session() as session:
        view = support.card(world.runtime, session, support.get_ticket(session, 1))
    assert view.runbooks == []
    assert "This solved it" not in json.dumps([m.blocks for m in world.fake.posts("C0HELP00001")])


def test_a_support_request_naming_a_runbooks_subject_still_gets_it(world):
    world.runtime.extras["runbooks"] = RunbookIndex(runbooks_dir())
    world.slack.message("C0HELP00001", "U0APP00001", "How do I get access to the orders database?")
    with world.db.session() as session:
        view = support.card(world.runtime, session, support.get_ticket(session, 1))
    assert [m.runbook.slug for m in view.runbooks] == ["how-to-request-database-access"]
