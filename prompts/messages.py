"""Load named message templates (`prompts/messages.<lang>.yaml`) and render them."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
LANGS = ("en", "zh")


@lru_cache
def _catalog(lang: str) -> dict[str, str]:
    return yaml.safe_load((HERE / f"messages.{lang}.yaml").read_text(encoding="utf-8"))


def render(template_name: str, lang: str = "en", /, **values: object) -> str:
    """The template `template_name` in `lang` (English when the language or the name is missing there)."""
    lang = lang if lang in LANGS else "en"
    template = _catalog(lang).get(template_name) or _catalog("en").get(template_name)
    if template is None:
        raise KeyError(f"No message template named {template_name!r}")
    return template.format(**values).strip()
