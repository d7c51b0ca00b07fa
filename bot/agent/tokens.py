"""Token estimates where no tokenizer is at hand (the offline model, prompt-size reports).

No BPE vocabulary ships with the project (tiktoken downloads its files at run time, which we never
do), so this is a documented approximation: ~4 characters per token for Latin text and one token
per CJK character, which is close to cl100k/o200k for mixed zh/en business text. Real LLM turns
log the provider's own usage numbers instead.
"""
from __future__ import annotations

import math


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    cjk = sum(1 for ch in text if "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef")
    other = len(text) - cjk
    return cjk + math.ceil(other / 4)
