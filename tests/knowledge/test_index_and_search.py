"""Building the Chroma index incrementally, and hybrid search over it."""
from __future__ import annotations

import pytest

from knowledge.index import build_index
from knowledge.keyword import KeywordIndex, tokenize
from knowledge.retrieval import PlaybookSearch


def test_the_first_build_embeds_every_section_and_reports_progress(settings, embedder):
    seen = []
    report = build_index(settings, embedder, progress=lambda done, total: seen.append((done, total)))
    assert report.sections == 20 and report.added == 20 and report.unchanged == 0 and report.removed == 0
    assert embedder.embedded == 20
    assert seen[0] == (0, 20) and seen[-1] == (20, 20)


def test_a_second_build_embeds_only_what_changed(settings, embedder, library):
    build_index(settings, embedder)
    embedder.embedded = 0
    assert build_index(settings, embedder).unchanged == 20 and embedder.embedded == 0
    path = library / "collections.en.md"
    path.write_text(path.read_text().replace("legal letter", "letter from counsel"), encoding="utf-8")
    (library / "stage-bid.zh.md").unlink()
    report = build_index(settings, embedder)
    assert (report.updated, report.added, report.removed) == (1, 0, 5)
    assert embedder.embedded == 1


def test_rebuild_embeds_everything_again(settings, embedder):
    build_index(settings, embedder)
    embedder.embedded = 0
    report = build_index(settings, embedder, rebuild=True)
    assert report.added == 20 and embedder.embedded == 20


def test_search_before_indexing_says_to_run_the_indexer(settings, embedder):
    with pytest.raises(LookupError, match="ltc index"):
        PlaybookSearch(settings, embedder)


def test_search_returns_cited_passages_in_the_askers_language(settings, embedder):
    build_index(settings, embedder)
    search = PlaybookSearch(settings, embedder)
    en = search.search("does the director or finance decide first?")
    assert en[0].doc == "gate-atc" and en[0].citation == "ATC contract decision § Who decides"
    zh = search.search("逾期发票 催收 升级")
    assert zh[0].doc == "collections" and zh[0].lang == "zh" and zh[0].section == "催收升级"
    # one passage per section even though both languages match
    assert len({(p.doc, p.section) for p in zh}) == len(zh)


def test_the_caller_can_choose_the_language_shown(settings, embedder):
    build_index(settings, embedder)
    search = PlaybookSearch(settings, embedder)
    hits = search.search("overdue invoices escalate legal letter", lang="zh")
    assert hits[0].doc == "collections" and hits[0].lang == "zh" and hits[0].section == "催收升级"


def test_filters_keep_only_the_stage_and_role_asked_for(settings, embedder):
    build_index(settings, embedder)
    search = PlaybookSearch(settings, embedder)
    hits = search.search("checklist deadline pricing delivery", stage="bid", k=10)
    assert hits and {p.stage for p in hits} <= {"bid", "any"}
    assert all(p.role in ("AR", "all") for p in search.search("overdue invoices", role="AR", k=10))
    assert search.search("overdue invoices", stage="qualify") == []


def test_an_empty_question_finds_nothing(settings, embedder):
    build_index(settings, embedder)
    assert PlaybookSearch(settings, embedder).search("   ") == []


def test_tokens_cover_english_words_and_chinese_terms():
    assert tokenize("What is the ATC decision?") == ["atc", "decision"]
    zh = tokenize("签约决策需要财务审批吗")
    assert "签约" in zh and "财务" in zh and "吗" not in zh


def test_bm25_ranks_the_document_that_shares_the_rare_words():
    index = KeywordIndex(["tender deadline and pricing", "collections and overdue invoices", "回款 催收 逾期"])
    scores = index.scores("overdue invoices")
    assert max(range(3), key=scores.__getitem__) == 1
    zh = index.scores("逾期回款")
    assert max(range(3), key=zh.__getitem__) == 2
    assert index.scores("") == []
