"""`GET /whoami`: which key, acting as whom, with which scopes (a client's first call)."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from bot.api.deps import Caller, caller, uow_dep
from domain.services.schemas import View

router = APIRouter(tags=["meta"])


class WhoAmI(View):
    key_id: int
    key_name: str
    user_id: int
    user_email: str
    scopes: list[str]


@router.get("/whoami", response_model=WhoAmI, summary="The calling key, its service user and scopes")
def whoami(who: Caller = Depends(caller()), uow=Depends(uow_dep)) -> WhoAmI:
    with uow:
        user = uow.users.get(who.actor.user_id)
        return WhoAmI(key_id=who.key_id, key_name=who.name, user_id=user.id, user_email=user.email,
                      scopes=sorted(who.scopes))
