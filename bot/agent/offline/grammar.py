"""The command language (English / 中文) → one tool call. Documented in README (两种语言)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from prompts.messages import render


@dataclass(frozen=True)
class Command:
    tool: str
    args: dict[str, Any] = field(default_factory=dict)


_CJK = re.compile(r"[\u4e00-\u9fff]")


def detect_locale(text: str, default: str = "en") -> str:
    """The language the user wrote in: Chinese if any Han character, English if only Latin letters."""
    if _CJK.search(text or ""):
        return "zh"
    if re.search(r"[A-Za-z]", text or ""):
        return "en"
    return default


def parse(text: str, *, today: date) -> Command | None:
    """The tool call a command means, or None when it is not in the command language."""
    return None  # TODO(H3): the rules


def help_text(locale: str, text: str = "") -> str:
    return render("offline.help", locale)
