"""Importing this module registers every tool (tools/registry.REGISTRY)."""
from tools import leads, playbooks  # noqa: F401
