"""Daily/hourly job: raise the reminders chat surfaces deliver (approvals waiting, quotes expiring,
milestones due, the AR's overdue-collections digest).

Each reminder is an outbox event whose key names the fact (the step and level, the quote and its
date, the owner and the day), so running the job every hour raises each one once. Who hears of it
and in which words is the surfaces' business; this module only decides that it is due.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from domain.actor import Actor
from domain.model.events import (ApprovalReminderDue, CollectionsDigestDue, DeliveryMilestoneDue, PipelineDigestDue,
                                 QuoteExpiring)
from domain.model.vocab import Role
from domain.rbac import UseCase
from domain.services import collections
from domain.services.base import begin, emit, job_date
from domain.services.schemas import View


class ReminderRun(View):
    approvals_reminded: int
    approvals_escalated: int
    quotes_expiring: int
    milestones_due: int
    digests: int
    pipeline_digests: int = 0

    @property
    def total(self) -> int:
        return (self.approvals_reminded + self.approvals_escalated + self.quotes_expiring + self.milestones_due
                + self.digests + self.pipeline_digests)


def waiting_since(request) -> datetime:
    """When the pending step began to wait: the last decision (a step opened) or the request itself."""
    decided = [d.decided_at for d in request.decisions]
    return max(decided) if decided else request.created_at


def raise_reminders(*, actor: Actor, uow, remind_after_hours: int, escalate_after_hours: int,
                    quote_notice_days: int, milestone_notice_days: int, as_of: date | None = None,
                    digest_weekday: int | None = None) -> ReminderRun:
    begin(uow, actor, UseCase.RUN_JOBS)
    now = uow.now()
    today = job_date(uow, as_of)
    reminded = escalated = 0
    for request in uow.approvals.pending():
        step = request.pending_step()
        if step is None:
            continue
        hours = int((now - waiting_since(request)).total_seconds() // 3600)
        # Level 1 before level 2, so an approver always hears before their manager does.
        for level, after in ((1, remind_after_hours), (2, escalate_after_hours)):
            if hours >= after:
                emit(uow, ApprovalReminderDue(approval_id=request.id, step_seq=step.seq, level=level,
                                              hours_waiting=hours))
                reminded, escalated = (reminded + 1, escalated) if level == 1 else (reminded, escalated + 1)
    quotes = 0
    for quote in uow.quotes.open_expiring(today, today + timedelta(days=quote_notice_days)):
        opp = uow.opportunities.get(quote.opportunity_id)
        emit(uow, QuoteExpiring(quote_id=quote.id, opportunity_id=opp.id, owner_id=opp.owner_id,
                                valid_until=quote.valid_until.isoformat()))
        quotes += 1
    milestones = 0
    until = today + timedelta(days=milestone_notice_days)
    for order in uow.orders.with_milestones_due(until):
        contract = uow.contracts.get(order.contract_id)
        for m in order.milestones:
            if m.status == "planned" and m.planned_date <= until:
                emit(uow, DeliveryMilestoneDue(milestone_id=m.id, order_id=order.id,
                                               opportunity_id=contract.opportunity_id, seq=m.seq,
                                               planned_date=m.planned_date.isoformat()))
                milestones += 1
    overdue: dict[int, int] = {}
    for line in collections.aging_report(actor=actor, uow=uow, as_of=today).lines:
        if line.days_overdue > 0:
            overdue[line.owner_id] = overdue.get(line.owner_id, 0) + 1
    for owner_id, count in sorted(overdue.items()):
        emit(uow, CollectionsDigestDue(owner_id=owner_id, on=today.isoformat(), invoices=count))
    return ReminderRun(approvals_reminded=reminded, approvals_escalated=escalated, quotes_expiring=quotes,
                       milestones_due=milestones, digests=len(overdue),
                       pipeline_digests=pipeline_digests(uow, today, digest_weekday))


MANAGES = frozenset({Role.SALES_MANAGER, Role.DIRECTOR})


def pipeline_digests(uow, today: date, weekday: int | None) -> int:
    """From `weekday` on (0 = Monday), each active manager's weekly digest; the ISO week keys it once."""
    if weekday is None or today.weekday() < weekday:
        return 0
    year, week, _ = today.isocalendar()
    managers = sorted(u.id for u in uow.users.all() if u.active and u.roles & MANAGES)
    for manager_id in managers:
        emit(uow, PipelineDigestDue(manager_id=manager_id, week=f"{year}-W{week:02d}", on=today.isoformat()))
    return len(managers)
