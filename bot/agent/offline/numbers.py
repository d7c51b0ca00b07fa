"""Numbers as people write them in a sales chat: 2M, 500k, 1,200,000, 200万, 1.5亿, 三十万, 30w;
quantities (3, 三); discounts (15%, 15% off, 九折 = 10 %, 八五折 = 15 %, 95折 = 5 %, 半价 = 50 %).

Amounts come back as plain decimal strings ("2000000", "1200000.5"): the tools parse them as Decimal,
so nothing here ever goes through a float.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
CN_NUM = "[零〇一二两三四五六七八九十百千万亿]+"
ARABIC = r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
INT = r"\d+|[零〇一二两三四五六七八九十百千]+"

_SCALE = {"k": 10**3, "thousand": 10**3, "千": 10**3, "w": 10**4, "万": 10**4, "m": 10**6, "mn": 10**6,
          "million": 10**6, "百万": 10**6, "千万": 10**7, "亿": 10**8, "b": 10**9, "bn": 10**9, "billion": 10**9}
CURRENCY_WORDS = (
    ("USD", r"US\$|\$|USD|美元|美金|dollars?"),
    ("EUR", r"€|EUR|欧元|euros?"),
    ("HKD", r"HK\$|HKD|港币|港元"),
    ("GBP", r"£|GBP|英镑"),
    ("JPY", r"JPY|日元"),
    ("CNY", r"¥|RMB|CNY|人民币"),
)
_CURRENCY = [(code, re.compile(rf"^(?:{rx})$", re.I)) for code, rx in CURRENCY_WORDS]
_CUR_ALT = "|".join(rx for _, rx in CURRENCY_WORDS)
_UNIT_WORD = r"元|块钱?|yuan"  # the plain word for money: says nothing about the currency

AMOUNT_RX = (
    rf"(?<![A-Za-z0-9.\-#/])(?P<pre>{_CUR_ALT})?\s*"
    rf"(?P<num>{ARABIC}|{CN_NUM})"
    r"(?:\s*(?P<suf>千万|百万|万|亿|千|thousand|million|billion|mn|bn|k|m|b|w)(?![A-Za-z]))?"
    rf"(?![\d.])(?:\s*(?P<post>{_CUR_ALT})(?![A-Za-z]))?(?:\s*(?:{_UNIT_WORD})(?![A-Za-z]))?"
)
_AMOUNT = re.compile(AMOUNT_RX, re.I)


@dataclass(frozen=True)
class Amount:
    value: str            # plain decimal string, e.g. "2000000"
    currency: str | None  # ISO code when the user wrote one ($, 美元, RMB, …)


def plain(d: Decimal) -> str:
    """Decimal → '2000000' / '1.5' (no exponent, no trailing zeros)."""
    s = format(d.normalize(), "f")
    return s


def cn_int(text: str) -> int | None:
    """Chinese numerals → int: 三 3, 十二 12, 三十 30, 一百二十 120, 两千五百 2500, 三十万 300000, 一亿二千万."""
    if not text or not any(ch in _CN_DIGIT or ch == "十" for ch in text):
        return None
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in _CN_DIGIT:
            digit = _CN_DIGIT[ch]
        elif ch in _CN_UNIT:
            section += (1 if digit is None else digit) * _CN_UNIT[ch]
            digit = None
        elif ch == "万":
            total += (section + (digit or 0)) * 10**4
            section, digit = 0, None
        elif ch == "亿":
            total = (total + section + (digit or 0)) * 10**8
            section, digit = 0, None
        else:
            return None
    return total + section + (digit or 0)


def integer(text: str) -> int | None:
    """'3' / '三' / '十二' → int, else None."""
    text = (text or "").strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    return cn_int(text)


def currency_code(word: str | None) -> str | None:
    if not word:
        return None
    for code, rx in _CURRENCY:
        if rx.match(word.strip()):
            return code
    return None


def _from_match(m: re.Match) -> Amount | None:
    num = m.group("num")
    try:
        value = Decimal(num.replace(",", "")) if num[0].isdigit() else Decimal(cn_int(num) or 0)
    except InvalidOperation:
        return None
    suf = (m.group("suf") or "").lower()
    if suf:
        value *= _SCALE[suf]
    if value <= 0:
        return None
    return Amount(plain(value), currency_code(m.group("pre")) or currency_code(m.group("post")))


def amount(text: str) -> Amount | None:
    """The whole text is an amount ('2M', '200万', '$300k', '1,200,000 元'), else None."""
    m = _AMOUNT.fullmatch((text or "").strip())
    return _from_match(m) if m else None


def find_amount(text: str) -> tuple[Amount, tuple[int, int]] | None:
    """The first amount anywhere in the text, with its span."""
    for m in _AMOUNT.finditer(text or ""):
        found = _from_match(m)
        if found is not None:
            return found, m.span()
    return None


# -- discounts -------------------------------------------------------------------------------------

_ZHE_DIGITS = str.maketrans({"一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8",
                             "九": "9", "点": "."})
DISCOUNT_RX = (
    r"(?:(?:at|with|less|minus)\s+)?(?:an?\s+)?"
    r"(?:(?:discount(?:\s+of)?|折扣(?:率)?|优惠|让利|下浮|打)\s*[:=]?\s*)?"
    r"(?:-\s*)?(?P<pct>\d+(?:\.\d+)?)\s*(?:%|percent|pct)\s*(?:off|discount|折扣|优惠|的折扣|下浮)?"
    r"|(?:discount(?:\s+of)?|折扣(?:率)?|优惠)\s*[:=]?\s*(?P<bare>\d+(?:\.\d+)?)(?![\d.%])"
    r"|打?\s*(?P<zhe>\d(?:\.\d)?|\d\d|[一二三四五六七八九](?:点?[一二三四五六七八九])?)\s*折(?:扣)?"
    r"|(?P<half>半价)"
)
_DISCOUNT = re.compile(DISCOUNT_RX, re.I)


def zhe_to_pct(zhe: str) -> str | None:
    """九折 / 9折 → '10'; 八五折 / 85折 / 8.5折 → '15'; 95折 → '5' (折 is the share that is PAID)."""
    digits = zhe.translate(_ZHE_DIGITS)
    try:
        paid = Decimal(digits)
    except InvalidOperation:
        return None
    if "." not in digits and len(digits) == 2:
        if digits.endswith("0"):  # "85折" is 8.5折; nobody writes "80折" (that would be 八折)
            return None
        paid = paid / 10
    if not 0 < paid < 10:
        return None
    return plain((10 - paid) * 10)


def _pct(m: re.Match) -> str | None:
    if m.group("half"):
        return "50"
    if m.group("zhe"):
        return zhe_to_pct(m.group("zhe"))
    raw = m.group("pct") or m.group("bare")
    value = Decimal(raw)
    return plain(value) if 0 <= value <= 100 else None


def find_discount(text: str) -> tuple[str, tuple[int, int]] | None:
    """The first discount in the text as a percentage string ('10'), with its span."""
    for m in _DISCOUNT.finditer(text or ""):
        pct = _pct(m)
        if pct is not None:
            return pct, m.span()
    return None


def discount(text: str) -> str | None:
    """The whole text is a discount ('15% off', '九折', '打9折', 'discount 10%'), else None."""
    m = _DISCOUNT.fullmatch((text or "").strip())
    return _pct(m) if m else None
