"""Playbook files: front-matter, sections, checklists, content hashes."""
from __future__ import annotations

import pytest

from knowledge.documents import PlaybookError, checklists, load_library, parse
from tests.knowledge.conftest import doc


def test_a_playbook_is_cut_into_sections_at_level_two_headings(library):
    book = parse(library / "stage-bid.en.md")
    assert book.id == "stage-bid" and book.lang == "en" and book.title == "Bid stage"
    assert [s.heading for s in book.sections] == ["Bid stage", "Goal of the stage", "AR checklist",
                                                  "SR checklist", "FR checklist"]
    assert book.sections[1].text == "Submit a compliant tender on time with an approved quote."
    assert book.sections[1].citation == "Bid stage § Goal of the stage"
    assert {s.stage for s in book.sections} == {"bid"}


@pytest.mark.parametrize(("text", "problem"), [
    ("# no front matter\n\n## A\n\ntext", "no front-matter"),
    ("---\nid: x\ntitle: X\nlang: en\n---\n# X\n\n## A\n\ntext", "misses stage, gate, role, topic"),
    ("---\nid: x\ntitle: X\nlang: fr\nstage: any\ngate: none\nrole: all\ntopic: t\n---\n# X\n\n## A\n\nt", "lang"),
    ("---\nid: other\ntitle: X\nlang: en\nstage: any\ngate: none\nrole: all\ntopic: t\n---\n# X\n\n## A\n\nt",
     "must start with its id"),
    ("---\nid: x\ntitle: [unclosed\n---\n# X\n", "not YAML"),
])
def test_a_malformed_playbook_is_refused_with_the_reason(tmp_path, text, problem):
    path = tmp_path / "x.en.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlaybookError, match=problem.split(",")[0]):
        parse(path)


def test_two_playbooks_with_one_id_and_language_are_refused(library):
    (library / "stage-bid.extra.md").write_text(
        doc("stage-bid", "en", title="Copy", sections={"A": "text"}), encoding="utf-8")
    with pytest.raises(PlaybookError, match="Two en playbooks have the id stage-bid"):
        load_library(library)


def test_the_digest_changes_only_with_the_content(library):
    before = {s.id: s.digest for s in parse(library / "collections.en.md").sections}
    again = {s.id: s.digest for s in parse(library / "collections.en.md").sections}
    assert before == again
    path = library / "collections.en.md"
    path.write_text(path.read_text().replace("legal letter", "letter from counsel"), encoding="utf-8")
    after = {s.id: s.digest for s in parse(path).sections}
    changed = [i for i in before if before[i] != after[i]]
    assert changed == ["collections.en.01"]


def test_stage_checklists_per_role_in_the_asked_language(library):
    books = load_library(library)
    en = checklists(books, stage="bid", lang="en")
    zh = checklists(books, stage="bid", lang="zh")
    assert en == {"AR": ["Confirm the tender deadline", "Align pricing with the SR"],
                  "SR": ["Finish the technical response", "Check margin against the floor price"],
                  "FR": ["Confirm delivery capacity for the bid"]}
    assert zh["AR"] == ["确认投标截止时间", "与方案经理对齐价格"] and set(zh) == {"AR", "SR", "FR"}


def test_gate_checklists_fall_back_to_english(library):
    books = load_library(library)
    assert checklists(books, gate="ATC", lang="zh") == {"FR": ["Sign off deliverability", "List delivery risks"],
                                                        "AR": ["Bring the final payment terms"]}
    assert checklists(books, stage="qualify", lang="en") == {}
