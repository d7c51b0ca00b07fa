"""Resource routers: every module here that defines `router` (an APIRouter) is included.

Modules are loaded in name order, so the OpenAPI document is stable. A module that fails to
import fails the whole API loudly (a half API would be worse).
"""
from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def discover() -> list[APIRouter]:
    routers = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers
