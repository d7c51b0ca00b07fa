"""Keyword side of hybrid search: BM25 over words (English) and jieba tokens (Chinese)."""
from __future__ import annotations

import logging
import re
import threading

from rank_bm25 import BM25Okapi

_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[a-z0-9][a-z0-9\-]*")
_STOP = frozenset(
    "a an and are as at be by can do does for from has have how i in is it its me my of on or our "
    "should so that the their them then there this to we what when where which who why will with "
    "you your 的 了 是 在 和 与 及 或 吗 呢 吧 啊 我 我们 你 你们 他 她 它 要 会 能 该 怎么 什么 如何 哪些 "
    "一个 这个 那个 就 都 也 还 把 被 给 对 从 到 为 以 之 其 等".split()
)
_jieba_lock = threading.Lock()
_jieba = None


def _cut(text: str) -> list[str]:
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba.lcut(text)


def is_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


def tokenize(text: str) -> list[str]:
    text = text.lower()
    tokens: list[str] = []
    for piece in _cut(text) if is_chinese(text) else [text]:
        if _CJK.search(piece):
            if piece.strip() and piece not in _STOP:
                tokens.append(piece.strip())
        else:
            tokens.extend(w for w in _WORD.findall(piece) if w not in _STOP)
    return tokens


class KeywordIndex:
    """BM25 over a fixed list of documents; scores come back in that list's order."""

    def __init__(self, texts: list[str]) -> None:
        corpus = [tokenize(t) or ["∅"] for t in texts]
        self._bm25 = BM25Okapi(corpus) if corpus else None

    def scores(self, query: str) -> list[float]:
        tokens = tokenize(query)
        if self._bm25 is None or not tokens:
            return []
        return list(self._bm25.get_scores(tokens))
