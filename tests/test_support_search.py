"""Runbook search ranks with BM25 over title, keywords and body; weak matches are not offered."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bot.support.bm25 import BM25, tokenize
from bot.support.runbooks import RunbookIndex

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


def test_readme_is_not_a_runbook(tmp_path):
    assert "README" not in {r.slug for r in make_index(tmp_path).runbooks}


def test_index_picks_up_a_new_runbook_without_a_restart(tmp_path):
    index = make_index(tmp_path)
    assert index.search("kafka consumer lag") == []
    path = tmp_path / "kafka-lag.md"
    path.write_text(
        "---\ntitle: Kafka consumer lag\nkeywords: [kafka, lag]\n---\nScale consumers.\n"
    )
    future = time.time() + 5
    os.utime(path, (future, future))
    assert index.search("kafka consumer lag")[0].runbook.slug == "kafka-lag"


def test_excerpt_is_the_first_paragraph_of_prose(tmp_path):
    runbook = make_index(tmp_path).get("how-to-request-database-access")
    assert runbook is not None
    assert runbook.excerpt.startswith("Ask for read access")


def test_a_much_weaker_runner_up_is_not_offered(tmp_path):
    matches = make_index(tmp_path).search("read access to the orders postgres database")
    assert [m.runbook.slug for m in matches] == ["how-to-request-database-access"]
