"""Errors as the model reads them: what was wrong, the allowed values, "did you mean"."""
from __future__ import annotations

import enum
import re
import typing
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from domain.errors import LTCError
from prompts.messages import render

HINTS = {
    "not_found": "Check the reference or search first (search_records); never invent ids.",
    "permission_denied": "Tell the user plainly they cannot do this and who can; do not retry.",
    "invalid_transition": "Explain the allowed next states to the user; do not retry the same call.",
    "approval_required": "Tell the user which approval is needed; request it if they want.",
    "validation_failed": "Fix the named field using the allowed values and call again, or ask the user.",
    "conflict": "Someone changed the record meanwhile or it already exists: re-read, then decide.",
    "ambiguous": "Show the user the candidates and ask which one they mean.",
    "bad_arguments": "Fix the arguments named in `problems` and call the tool again.",
    "unknown_tool": "Use only the tools you were given.",
    "internal": "Apologise briefly; the problem was logged. Do not retry more than once.",
}


class Problem(BaseModel):
    field: str
    message: str
    allowed: list[Any] | None = None


class ToolError(BaseModel):
    """The structured error a tool returns instead of raising."""

    error: str = Field(description="machine code: not_found, permission_denied, validation_failed, …")
    message: str
    field: str | None = None
    allowed: list[Any] | None = None
    did_you_mean: list[str] | None = None
    problems: list[Problem] | None = None
    hint: str = ""

    @property
    def text(self) -> str:
        return self.text_in("en")

    def text_in(self, locale: str) -> str:
        """The message plus the choices, worded for a person in their language."""
        parts = [self.message]
        if self.did_you_mean:
            parts.append(render("tool.error.did_you_mean", locale, choices="; ".join(self.did_you_mean)))
        elif self.allowed:
            parts.append(render("tool.error.allowed", locale, values=", ".join(str(a) for a in self.allowed[:20])))
        if self.problems and len(self.problems) > 1:
            parts += [f"- {p.field}: {p.message}" for p in self.problems[1:]]
        return "\n".join(parts)


def from_domain(e: LTCError, locale: str = "en") -> ToolError:
    details = dict(e.details or {})
    did_you_mean = details.pop("did_you_mean", None)
    code = details.pop("code", None) or e.code
    return ToolError(error=code, message=localized(e, locale), field=e.field, allowed=e.allowed,
                     did_you_mean=did_you_mean, hint=HINTS.get(code, ""))


def localized(e: LTCError, locale: str) -> str:
    """The domain writes English; an error that names its message (details `message_key` + `params`)
    is rendered from prompts/domain.<lang>.yaml for other languages."""
    key = (e.details or {}).get("message_key")
    if not key or locale == "en":
        return e.message
    try:
        return render(f"domain.{key}", locale, **(e.details or {}).get("params", {}))
    except (KeyError, IndexError):  # a template not written yet: English beats nothing
        return e.message


def from_validation(e: ValidationError, model: type[BaseModel]) -> ToolError:
    problems = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        allowed = _allowed(model, err["loc"][0]) if err["loc"] else None
        if err.get("type") in ("literal_error", "enum") and not allowed:
            # Nested choices (payment_plan.0.trigger): pydantic lists them as "'a', 'b' or 'c'".
            allowed = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", ""))) or None
        problems.append(Problem(field=loc, message=err["msg"], allowed=allowed))
    first = problems[0]
    return ToolError(error="bad_arguments", message=f"{first.field}: {first.message}", field=first.field,
                     allowed=first.allowed, problems=problems, hint=HINTS["bad_arguments"])


def _allowed(model: type[BaseModel], name: Any) -> list[str] | None:
    field = model.model_fields.get(str(name))
    if field is None:
        return None
    for arg in (field.annotation, *typing.get_args(field.annotation)):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            return [m.value for m in arg]
        if typing.get_origin(arg) is typing.Literal:
            return list(typing.get_args(arg))
    if typing.get_origin(field.annotation) is typing.Literal:
        return list(typing.get_args(field.annotation))
    return None
