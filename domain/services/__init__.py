"""Use cases. Each: check permission → change the model → audit row + events → return plain data."""
# Registers quotes as subjects of discount approvals in the approval engine.
from domain.services import quotes as _quotes  # noqa: F401
