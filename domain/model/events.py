"""Domain events, named in the past tense. Each knows its outbox de-duplication key."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    @property
    def topic(self) -> str:
        return type(self).__name__

    @property
    def key(self) -> str:
        """Stable identity: the same fact emitted twice maps to one outbox row."""
        return f"{self.topic}:{self._key()}"

    def _key(self) -> str:
        raise NotImplementedError

    def payload(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LeadCreated(Event):
    lead_id: int
    source: str
    owner_id: int | None

    def _key(self) -> str:
        return str(self.lead_id)


@dataclass(frozen=True)
class LeadAssigned(Event):
    lead_id: int
    owner_id: int | None
    seq: int  # how many assignments this lead has had, so reassignments are distinct facts

    def _key(self) -> str:
        return f"{self.lead_id}:{self.seq}"


@dataclass(frozen=True)
class LeadStatusChanged(Event):
    lead_id: int
    from_status: str
    to_status: str
    audit_id: int

    def _key(self) -> str:
        return f"{self.lead_id}:{self.audit_id}"


@dataclass(frozen=True)
class LeadConverted(Event):
    lead_id: int
    account_id: int
    contact_id: int
    opportunity_id: int

    def _key(self) -> str:
        return str(self.lead_id)


@dataclass(frozen=True)
class OpportunityCreated(Event):
    opportunity_id: int
    owner_id: int
    amount: str
    currency: str

    def _key(self) -> str:
        return str(self.opportunity_id)


@dataclass(frozen=True)
class IronTriangleAssigned(Event):
    opportunity_id: int
    ar_id: int
    sr_id: int | None
    fr_id: int | None
    audit_id: int

    def _key(self) -> str:
        return f"{self.opportunity_id}:{self.audit_id}"


@dataclass(frozen=True)
class OpportunityStageChanged(Event):
    opportunity_id: int
    from_stage: str
    to_stage: str
    change_id: int
    approval_id: int | None = None

    def _key(self) -> str:
        return f"{self.opportunity_id}:{self.change_id}"


@dataclass(frozen=True)
class ApprovalRequested(Event):
    approval_id: int
    kind: str
    subject_type: str
    subject_id: int
    requested_by: int

    def _key(self) -> str:
        return str(self.approval_id)


@dataclass(frozen=True)
class ApprovalStepOpened(Event):
    """A later step became decidable: its approvers need a prompt."""

    approval_id: int
    step_seq: int
    role: str

    def _key(self) -> str:
        return f"{self.approval_id}:{self.step_seq}"


@dataclass(frozen=True)
class ApprovalDecided(Event):
    approval_id: int
    step_seq: int
    decider_id: int
    outcome: str
    status: str

    def _key(self) -> str:
        return f"{self.approval_id}:{self.step_seq}"


@dataclass(frozen=True)
class ApprovalClosed(Event):
    """The request ended without a decision: cancelled or expired."""

    approval_id: int
    status: str

    def _key(self) -> str:
        return str(self.approval_id)


@dataclass(frozen=True)
class GatePassed(Event):
    opportunity_id: int
    approval_id: int
    kind: str

    def _key(self) -> str:
        return str(self.approval_id)


@dataclass(frozen=True)
class GateRejected(Event):
    opportunity_id: int
    approval_id: int
    kind: str
    reason: str

    def _key(self) -> str:
        return str(self.approval_id)


@dataclass(frozen=True)
class QuoteStatusChanged(Event):
    quote_id: int
    opportunity_id: int
    from_status: str
    to_status: str
    audit_id: int

    def _key(self) -> str:
        return f"{self.quote_id}:{self.audit_id}"


@dataclass(frozen=True)
class ContractSigned(Event):
    contract_id: int
    opportunity_id: int
    value: str
    currency: str

    def _key(self) -> str:
        return str(self.contract_id)


@dataclass(frozen=True)
class ContractStatusChanged(Event):
    contract_id: int
    from_status: str
    to_status: str
    audit_id: int

    def _key(self) -> str:
        return f"{self.contract_id}:{self.audit_id}"


@dataclass(frozen=True)
class DeliveryMilestoneAccepted(Event):
    order_id: int
    milestone_id: int
    contract_id: int
    certificate_ref: str

    def _key(self) -> str:
        return str(self.milestone_id)


@dataclass(frozen=True)
class OrderCreated(Event):
    """A signed contract's order was opened (its delivery plan): ERP/billing books the sales order."""

    order_id: int
    contract_id: int

    def _key(self) -> str:
        return str(self.order_id)


@dataclass(frozen=True)
class InvoiceIssued(Event):
    invoice_id: int
    contract_id: int
    amount: str
    currency: str
    due_on: str

    def _key(self) -> str:
        return str(self.invoice_id)


@dataclass(frozen=True)
class InvoiceVoided(Event):
    invoice_id: int
    contract_id: int
    amount: str
    currency: str
    reason: str

    def _key(self) -> str:
        return str(self.invoice_id)  # a voided invoice stays void: the milestone is invoiced anew


@dataclass(frozen=True)
class PaymentRecorded(Event):
    payment_id: int
    account_id: int
    amount: str
    currency: str
    unapplied: str

    def _key(self) -> str:
        return str(self.payment_id)


@dataclass(frozen=True)
class InvoiceReminderDue(Event):
    """Dunning: the deal's AR (accountable for cash) is told to chase the customer."""

    invoice_id: int
    owner_id: int
    level: int
    days_overdue: int
    balance: str
    currency: str

    def _key(self) -> str:
        return f"{self.invoice_id}:{self.level}"


@dataclass(frozen=True)
class RevenueRecognised(Event):
    contract_id: int
    entry_id: int
    amount: str

    def _key(self) -> str:
        return str(self.entry_id)


@dataclass(frozen=True)
class ApprovalReminderDue(Event):
    """A step waited too long: level 1 reminds its approvers, level 2 escalates to their managers."""

    approval_id: int
    step_seq: int
    level: int
    hours_waiting: int

    def _key(self) -> str:
        return f"{self.approval_id}:{self.step_seq}:{self.level}"


@dataclass(frozen=True)
class QuoteExpiring(Event):
    quote_id: int
    opportunity_id: int
    owner_id: int
    valid_until: str

    def _key(self) -> str:
        return f"{self.quote_id}:{self.valid_until}"


@dataclass(frozen=True)
class DeliveryMilestoneDue(Event):
    """A milestone not yet done is due soon (or late): its FR and the deal's AR hear of it once per date."""

    milestone_id: int
    order_id: int
    opportunity_id: int
    seq: int
    planned_date: str

    def _key(self) -> str:
        return f"{self.milestone_id}:{self.planned_date}"


@dataclass(frozen=True)
class CollectionsDigestDue(Event):
    """Once a day, each AR with overdue invoices gets one digest of them."""

    owner_id: int
    on: str
    invoices: int

    def _key(self) -> str:
        return f"{self.owner_id}:{self.on}"


@dataclass(frozen=True)
class TargetSet(Event):
    target_id: int
    user_id: int | None
    team_id: int | None
    period: str
    amount: str
    set_by: int
    at: str  # each setting is its own fact: a target may be set again

    def _key(self) -> str:
        return f"{self.target_id}:{self.at}"


@dataclass(frozen=True)
class PipelineDigestDue(Event):
    """Once a week, each sales manager and director gets a digest of their team's pipeline."""

    manager_id: int
    week: str  # ISO week, e.g. 2026-W47
    on: str

    def _key(self) -> str:
        return f"{self.manager_id}:{self.week}"
