"""Load named message templates (`prompts/<topic>.<lang>.yaml`) and render them."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
LANGS = ("en", "zh")


@lru_cache
def _catalog(lang: str) -> dict[str, str]:
    """Every `<topic>.<lang>.yaml` in prompts/ merged; a name defined twice is a mistake, not an override."""
    merged: dict[str, str] = {}
    for path in sorted(HERE.glob(f"*.{lang}.yaml")):
        for name, template in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            if name in merged:
                raise KeyError(f"Message template {name!r} is defined twice ({path.name})")
            merged[name] = template
    return merged


def names(lang: str = "en") -> set[str]:
    return set(_catalog(lang))


def render(template_name: str, lang: str = "en", /, **values: object) -> str:
    """The template `template_name` in `lang` (English when the language or the name is missing there)."""
    lang = lang if lang in LANGS else "en"
    template = _catalog(lang).get(template_name) or _catalog("en").get(template_name)
    if template is None:
        raise KeyError(f"No message template named {template_name!r}")
    return template.format(**values).strip()
