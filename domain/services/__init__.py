"""Use cases. Each: check permission → change the model → audit row + events → return plain data."""
# Register approval subjects and hooks in the approval engine: quotes (discount approvals),
# contracts (ATC signs them; change orders).
from domain.services import contracts as _contracts  # noqa: F401
from domain.services import quotes as _quotes  # noqa: F401
