"""Plain-Python domain model: entities, state machines and their guards. No SQLAlchemy here."""
