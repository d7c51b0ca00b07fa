"""Normalised identities for de-duplication (emails, phones, company + person names)."""
from __future__ import annotations

import re
import unicodedata

_COMPANY_SUFFIXES = (
    "股份有限公司", "有限责任公司", "有限公司", "集团", "公司",
    " co ltd", " co., ltd", " company limited", " limited", " ltd", " inc", " llc", " gmbh", " corp",
    " corporation", " co", " plc", " sa", " ag",
)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    return re.sub(r"\s+", " ", text)


def email_norm(email: str | None) -> str | None:
    if not email or not email.strip():
        return None
    return _fold(email)


def phone_norm(phone: str | None) -> str | None:
    """Digits only, without China's country code or trunk 0, so +86 21…, 0086 21… and 021… meet."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", phone))
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) in (12, 13):  # 86 + 10-digit landline or 11-digit mobile
        digits = digits[2:]
    return digits.lstrip("0") or None


def company_norm(name: str) -> str:
    text = _fold(name).replace(".", "").replace(",", "")
    changed = True
    while changed:
        changed = False
        for suffix in _COMPANY_SUFFIXES:
            s = suffix.replace(".", "").replace(",", "")
            if text.endswith(s) and len(text) > len(s):
                text = text[: -len(s)].strip()
                changed = True
    return re.sub(r"[\s\-_()（）·&]+", "", text)


def person_norm(name: str) -> str:
    return re.sub(r"[\s\-_.·]+", "", _fold(name))


def identity_norm(company: str, contact: str) -> str:
    return f"{company_norm(company)}|{person_norm(contact)}"
