"""Use cases. Each: check permission → change the model → audit row + events → return plain data."""
