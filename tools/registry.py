"""One registry of typed tools: each is `fn(args: ArgsModel, ctx: ToolContext) -> ResultModel`.

A tool's docstring's first line is what the model reads. Its audience (which roles get it bound)
and keywords (which messages make it relevant) keep each turn's prompt small. A tool that moves
money or decisions names a `confirm` function: given the previewed result it says in plain words
what would happen (or None when no confirmation is needed, e.g. a discount inside the auto band).
"""
from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from domain.model.vocab import Role

# Audiences: who a tool is for. A user belongs to every audience one of their roles maps to.
REP, MANAGER, APPROVER, FINANCE, DELIVERY, ALL = "rep", "manager", "approver", "finance", "delivery", "all"
AUDIENCES_BY_ROLE: dict[Role, frozenset[str]] = {
    Role.SALES_REP: frozenset({REP}),
    Role.SOLUTION_MANAGER: frozenset({REP, DELIVERY}),
    Role.FULFILLMENT_MANAGER: frozenset({DELIVERY}),
    Role.SALES_MANAGER: frozenset({REP, MANAGER, APPROVER}),
    Role.DIRECTOR: frozenset({REP, MANAGER, APPROVER}),
    Role.FINANCE: frozenset({FINANCE, APPROVER}),
    Role.LEGAL: frozenset({APPROVER}),
    Role.SALES_OPS: frozenset({REP, MANAGER, DELIVERY}),
    Role.ADMIN: frozenset({REP, MANAGER, APPROVER, FINANCE, DELIVERY}),
}


def audiences_for(roles: typing.Iterable[Role | str]) -> frozenset[str]:
    out: set[str] = {ALL}
    for r in roles:
        out |= AUDIENCES_BY_ROLE.get(Role(r), frozenset())
    return frozenset(out)


class ToolResult(BaseModel):
    """Every result carries a ready-to-post text in the user's language beside its data."""

    text: str = Field(description="a ready-to-post answer in the user's language")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    fn: Callable[..., BaseModel]
    args: type[BaseModel]
    result: type[BaseModel]
    description: str
    audience: frozenset[str]
    keywords: tuple[str, ...] = ()
    writes: bool = False
    confirm: Callable[[BaseModel, BaseModel, str], str | None] | None = field(default=None)

    def for_audiences(self, audiences: frozenset[str]) -> bool:
        return bool(self.audience & audiences)


REGISTRY: dict[str, ToolSpec] = {}


def tool(*, audience: typing.Iterable[str] = (ALL,), keywords: typing.Iterable[str] = (), writes: bool = False,
         confirm: Callable[[BaseModel, BaseModel, str], str | None] | None = None):
    """Register `fn(args, ctx) -> result` under its own name."""

    def register(fn: Callable[..., BaseModel]) -> Callable[..., BaseModel]:
        hints = typing.get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        args_model, result_model = hints[params[0]], hints["return"]
        doc = inspect.getdoc(fn) or ""
        if not doc:
            raise TypeError(f"tool {fn.__name__} needs a docstring: its first line is what the model reads")
        if fn.__name__ in REGISTRY and REGISTRY[fn.__name__].fn is not fn:
            raise TypeError(f"two tools named {fn.__name__}")
        REGISTRY[fn.__name__] = ToolSpec(
            name=fn.__name__, fn=fn, args=args_model, result=result_model, description=doc.splitlines()[0],
            audience=frozenset(audience), keywords=tuple(k.lower() for k in keywords), writes=writes,
            confirm=confirm)
        return fn

    return register


def all_tools() -> dict[str, ToolSpec]:
    """Every tool, importing the modules that define them."""
    from tools import catalog  # noqa: F401  (imports register the tools)

    return REGISTRY
