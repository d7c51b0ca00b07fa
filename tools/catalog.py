"""Importing this module registers every tool (tools/registry.REGISTRY)."""
from tools import leads, playbooks  # noqa: F401
from tools import accounts, approvals, opportunities, quotes  # noqa: F401
from tools import billing, collections, contracts, delivery, payments  # noqa: F401
from tools import deal_team, orders, quote_flow  # noqa: F401
from tools import analytics  # noqa: F401
