"""Persistence adapters: tables, mappers, repositories, unit of work, migrations."""
