"""Finding a contract the way every contract-side use case must: visible deal first, locks deal → contract."""
from __future__ import annotations

from domain.errors import NotFound
from domain.model.contracts import Contract
from domain.model.message_keys import keyed
from domain.model.opportunities import Opportunity
from domain.services import opportunities as opp_svc
from domain.services.base import Ctx


def find_contract(uow, ref: int | str) -> Contract | None:
    if isinstance(ref, int):
        return uow.contracts.get(ref) if ref > 0 else None
    if isinstance(ref, str) and ref.strip().isdigit():
        return uow.contracts.get(int(ref.strip()))
    return uow.contracts.by_number(ref) if isinstance(ref, str) and ref.strip() else None


def visible_contract(uow, ctx: Ctx, ref: int | str, *, for_update: bool = False) -> tuple[Contract, Opportunity]:
    contract = find_contract(uow, ref)
    if contract is None:
        raise NotFound(f"Contract {ref} does not exist", field="contract_id",
                       details=keyed("contract.not_found", ref=ref))
    opp = opp_svc.visible_opportunity(uow, ctx, contract.opportunity_id, for_update=for_update)
    if for_update:
        contract = uow.contracts.get_for_update(contract.id)
    return contract, opp
