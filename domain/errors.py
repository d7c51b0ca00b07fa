"""One error hierarchy for the whole product; edges translate it (HTTP, tool errors, chat)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class LTCError(Exception):
    """Base of every domain error: a message a person can act on, plus structured detail."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        allowed: Iterable[Any] | None = None,
        missing: Iterable[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.allowed = list(allowed) if allowed is not None else None
        self.missing = list(missing) if missing is not None else None
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            data["field"] = self.field
        if self.allowed is not None:
            data["allowed"] = self.allowed
        if self.missing is not None:
            data["missing"] = self.missing
        if self.details:
            data["details"] = self.details
        return data


class NotFound(LTCError):
    code = "not_found"


class PermissionDenied(LTCError):
    code = "permission_denied"


class InvalidTransition(LTCError):
    code = "invalid_transition"


class ApprovalRequired(LTCError):
    code = "approval_required"


class ValidationFailed(LTCError):
    code = "validation_failed"


class Conflict(LTCError):
    code = "conflict"


class Unauthenticated(LTCError):
    """A caller could not prove who it is: a bad signature, a foreign sender, an unknown API key."""

    code = "unauthenticated"
