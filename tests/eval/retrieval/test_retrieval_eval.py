"""The playbook library itself, and retrieval quality over it (CI gate: recall@3 ≥ 0.9)."""
from __future__ import annotations

from collections import Counter

import pytest

from domain.settings import Settings
from knowledge.documents import CHECKLIST_HEADING, checklists, load_library
from tests.eval.retrieval.harness import build_search, evaluate, load_questions, report


@pytest.fixture(scope="module")
def books():
    return load_library(Settings().playbooks_dir)


def test_the_library_has_thirty_documents_each_in_chinese_and_english(books):
    langs: dict[str, set[str]] = {}
    for b in books:
        langs.setdefault(b.id, set()).add(b.lang)
    assert len(langs) >= 30, f"only {len(langs)} playbooks"
    assert {doc: ls for doc, ls in langs.items() if ls != {"en", "zh"}} == {}


def test_both_languages_of_a_playbook_share_its_front_matter_and_structure(books):
    by_id: dict[str, dict] = {}
    for b in books:
        by_id.setdefault(b.id, {})[b.lang] = b
    for doc, pair in by_id.items():
        en, zh = pair["en"], pair["zh"]
        for key in ("stage", "gate", "role", "topic"):
            assert en.meta[key] == zh.meta[key], f"{doc}: {key} differs between languages"
        assert len(en.sections) == len(zh.sections), f"{doc}: {len(en.sections)} en vs {len(zh.sections)} zh sections"


def test_every_stage_and_gate_playbook_carries_a_checklist_per_role(books):
    stages = ("qualify", "initiated", "solution", "bid", "negotiate")
    gates = ("ATI", "solution_review", "ATB", "ATC", "discount")
    for lang in ("en", "zh"):
        for stage in stages:
            assert set(checklists(books, stage=stage, lang=lang)) == {"AR", "SR", "FR"}, (stage, lang)
        for gate in gates:
            assert set(checklists(books, gate=gate, lang=lang)) == {"AR", "SR", "FR"}, (gate, lang)
    # and checklists are real lists of actions
    for b in books:
        for s in b.sections:
            if CHECKLIST_HEADING.match(s.heading):
                assert s.text.count("\n- ") + s.text.startswith("- ") >= 3, f"{b.path.name} § {s.heading}"


def test_the_question_set_is_large_bilingual_and_cross_language(books):
    questions = load_questions()
    ids = {b.id for b in books}
    assert len(questions) >= 60
    langs = Counter(q.lang for q in questions)
    assert langs["en"] >= 25 and langs["zh"] >= 25
    assert sum(q.cross for q in questions) >= 15
    assert {q.doc for q in questions} <= ids


def test_retrieval_finds_the_expected_playbook_in_the_top_three(tmp_path):
    search = build_search(str(tmp_path / "chroma"))
    groups, misses, latencies = evaluate(search, load_questions())
    print("\n" + report(groups, misses, latencies))
    assert groups["all"].recall(3) >= 0.9, report(groups, misses, latencies)
    assert groups["cross"].recall(3) >= 0.8, report(groups, misses, latencies)
