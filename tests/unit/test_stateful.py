"""A hypothesis state machine over the services on fakes: random deals, moves, gates and deciders.

Any user may try any action; domain errors (LTCError) are expected for the illegal ones and must
leave the committed state exactly as it was. After every step the invariants below must hold.
"""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from domain.errors import LTCError
from domain.model.opportunities import CLOSED_STAGES, OPEN_STAGES, STAGE_ORDER
from domain.model.quotes import Quote
from domain.services import approvals, opportunities
from tests import builders
from tests.fakes import FakeStore, FakeUnitOfWork
from tests.unit.conftest import new_deal

PEOPLE = ["rep", "rep2", "sr", "fr", "manager", "director", "manager_w", "director_w", "rep_w",
          "finance", "legal", "sales_ops", "admin"]
REQUESTERS = ["rep", "rep2", "manager", "director", "sales_ops", "admin", "rep_w"]
OPEN = [s.value for s in OPEN_STAGES]
CLOSED = [s.value for s in CLOSED_STAGES]
NEXT = {a.value: b.value for a, b in zip(STAGE_ORDER, STAGE_ORDER[1:])}
GATE_OF = {("qualify", "initiated"): "ATI", ("initiated", "solution"): "solution_review",
           ("solution", "bid"): "ATB", ("negotiate", "won"): "ATC"}
STEPS_RUN = {"steps": 0, "calls": 0, "ok": 0, "refused": 0}


@lru_cache(maxsize=1)
def _base() -> tuple[FakeStore, builders.Org]:
    store = FakeStore()
    return store, builders.build_org(lambda: FakeUnitOfWork(store))


class DealMachine(RuleBasedStateMachine):
    deals = Bundle("deals")
    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        base, org = _base()
        self.store, self.org = base.clone(), org
        self.n = 0
        self.last_stage: dict[int, str] = {}
        self.closed: dict[int, str] = {}

    def _do(self, fn, *args, who: str, **kwargs):
        """One use case in one transaction; a domain error must leave the committed state untouched."""
        STEPS_RUN["calls"] += 1
        tables, commits = self.store.tables, self.store.commits  # a commit swaps in new tables
        try:
            with FakeUnitOfWork(self.store) as uow:
                result = fn(*args, actor=self.org.actor(who), uow=uow, **kwargs)
                uow.commit()
        except LTCError:
            STEPS_RUN["refused"] += 1
            assert self.store.tables is tables and self.store.commits == commits, "a refused call wrote"
            return None
        STEPS_RUN["ok"] += 1
        return result

    # --- rules ---------------------------------------------------------------------------------------

    @initialize(target=deals)
    def first_deal(self):
        return self._new_deal(True)

    @precondition(lambda self: self.n < 6)  # few deals, so each one gets far
    @rule(target=deals, triangle=st.booleans())
    def create_deal(self, triangle):
        return self._new_deal(triangle)

    def _new_deal(self, triangle: bool) -> int:
        self.n += 1
        opp_id = new_deal(lambda: FakeUnitOfWork(self.store), self.org, owner=["rep", "rep2"][self.n % 2],
                          n=self.n, triangle=triangle)
        self.last_stage[opp_id] = "qualify"
        return opp_id

    # `smart` picks the person (and gate) that can succeed, so deals get far; otherwise anyone tries.
    @rule(deal=deals, sr=st.booleans(), fr=st.booleans(), smart=st.booleans(), who=st.sampled_from(PEOPLE))
    def assign_triangle(self, deal, sr, fr, smart, who):
        self._do(opportunities.assign_iron_triangle, deal, who=self._owner(deal) if smart else who,
                 sr_id=self.org["sr"] if sr or smart else None, fr_id=self.org["fr"] if fr or smart else None)

    @rule(deal=deals, what=st.sampled_from(["solution", "plan", "signoff"]), smart=st.booleans(),
          who=st.sampled_from(PEOPLE))
    def record(self, deal, what, smart, who):
        if what == "solution":
            self._do(opportunities.record_solution, deal, "Cloud MES with edge gateways", who="sr" if smart else who)
        elif what == "plan":
            self._do(opportunities.record_delivery_plan, deal, "Two waves, six months", who="fr" if smart else who)
        else:
            self._do(opportunities.sign_off_deliverability, deal, who="fr" if smart else who)

    @rule(deal=deals, need=st.sampled_from([None, "", "Line 2 retrofit", "Line 2 retrofit"]),
          budget=st.sampled_from([None, "300000", "300000"]), who=st.sampled_from(REQUESTERS))
    def edit_need_and_budget(self, deal, need, budget, who):
        self._do(opportunities.update_opportunity, deal, {"customer_need": need, "budget": budget}, who=who)

    @rule(deal=deals, status=st.sampled_from(["draft", "approved"]))
    def add_quote(self, deal, status):
        with FakeUnitOfWork(self.store) as uow:
            version = 1 + sum(1 for q in uow.quotes.all() if q.opportunity_id == deal)
            uow.quotes.add(Quote(opportunity_id=deal, version=version, status=status,
                                       total=Decimal("100"), currency="CNY", created_at=uow.now()))
            uow.commit()

    def _owner(self, deal) -> str:
        owner_id = self.store.get("opportunities", deal).owner_id
        return next(k for k in PEOPLE if self.org[k] == owner_id)

    @rule(deal=deals, to=st.sampled_from([None, *NEXT, "lost"]), smart=st.booleans(),
          who=st.sampled_from(REQUESTERS))
    def advance(self, deal, to, smart, who):
        self._do(opportunities.advance_stage, deal, None if smart else to, who=self._owner(deal) if smart else who)

    @rule(target=requests, deal=deals, kind=st.sampled_from(["ATI", "solution_review", "ATB", "ATC"]),
          smart=st.booleans(), who=st.sampled_from(REQUESTERS))
    def request_gate(self, deal, kind, smart, who):
        if smart:
            stage = self.store.get("opportunities", deal).stage
            kind = next((k for (src, _), k in GATE_OF.items() if src == stage), kind)
            who = self._owner(deal)
        view = self._do(approvals.request_gate, deal, kind, who=who)
        return view.id if view is not None else multiple()

    @rule(req=requests, outcome=st.sampled_from(["approve", "approve", "approve", "reject"]),
          comment=st.sampled_from([None, "", "margin too thin"]), smart=st.booleans(), who=st.sampled_from(PEOPLE))
    def decide(self, req, outcome, comment, smart, who):
        if smart:
            with FakeUnitOfWork(self.store) as uow:
                eligible = approvals.eligible_approvers(uow, uow.approvals.get(req))
            who = next((k for k in PEOPLE if self.org[k] in eligible), who)
        self._do(approvals.decide_approval, req, outcome, comment=comment, who=who)

    @rule(deal=deals, reject=st.booleans())
    def push_to_the_next_stage(self, deal, reject):
        """What a diligent team does: fill in what the next gate needs, request it, get it decided."""
        opp = self.store.get("opportunities", deal)
        owner = self._owner(deal)
        if opp.stage == "bid":
            self._do(opportunities.advance_stage, deal, who=owner)
            return
        kind = next((k for (src, _), k in GATE_OF.items() if src == opp.stage), None)
        if kind is None:  # closed: nothing to push
            self._do(opportunities.advance_stage, deal, who=owner)
            return
        if kind == "ATI":
            self._do(opportunities.assign_iron_triangle, deal, sr_id=self.org["sr"], fr_id=self.org["fr"], who=owner)
            self._do(opportunities.update_opportunity, deal, {"customer_need": "Line 2", "budget": "9"}, who=owner)
        elif kind == "solution_review":
            self._do(opportunities.record_solution, deal, "Cloud MES", who="sr")
            self._do(opportunities.record_delivery_plan, deal, "Two waves", who="fr")
        elif kind == "ATB":
            self.add_quote(deal, "approved")
        else:
            self._do(opportunities.sign_off_deliverability, deal, who="fr")
        view = self._do(approvals.request_gate, deal, kind, who=owner)
        while view is not None and view.status == "pending" and view.eligible_approver_ids:
            who = next(k for k in PEOPLE if self.org[k] in view.eligible_approver_ids)
            last = view.current_step == len(view.steps)
            view = self._do(approvals.decide_approval, view.id, "reject" if reject and last else "approve",
                            comment="not this quarter" if reject and last else None, who=who)

    @rule(req=requests, who=st.sampled_from(PEOPLE))
    def cancel(self, req, who):
        self._do(approvals.cancel_approval, req, who=who)

    @rule(deal=deals, outcome=st.sampled_from(["lost", "abandoned"]),
          reason=st.sampled_from([None, "  ", "went with a competitor"]), who=st.sampled_from(REQUESTERS))
    def close(self, deal, outcome, reason, who):
        self._do(opportunities.close_opportunity, deal, outcome, reason, who=who)

    @rule(hours=st.sampled_from([1, 24, 80]))
    def time_passes_and_requests_expire(self, hours):
        self.store.clock.advance(hours=hours)
        self._do(approvals.expire_approvals, who="admin")

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def count_steps(self):  # invariants run once after each step (and once after initialisation)
        STEPS_RUN["steps"] += 1

    @invariant()
    def stages_only_move_forward_one_step_or_out(self):
        for opp in self.store.rows("opportunities"):
            was = self.last_stage.get(opp.id, "qualify")
            assert opp.stage == was or (was in OPEN and opp.stage in (NEXT[was], "lost", "abandoned")), \
                f"{opp.ref}: {was} -> {opp.stage}"
            self.last_stage[opp.id] = opp.stage

    @invariant()
    def history_is_a_monotonic_chain_ending_at_the_stage(self):
        for opp in self.store.rows("opportunities"):
            h = opp.history
            assert h and h[0].from_stage is None and h[-1].to_stage == opp.stage
            assert all(b.from_stage == a.to_stage for a, b in zip(h, h[1:]))
            assert all(a.changed_at <= b.changed_at for a, b in zip(h, h[1:]))
            for change in h[1:]:
                kind = GATE_OF.get((change.from_stage, change.to_stage))
                if kind is not None:  # a gated move happened only through an approved request of that gate
                    req = self.store.get("approvals", change.approval_id)
                    assert req is not None and (req.kind, req.status) == (kind, "approved")
                    assert (req.from_stage, req.to_stage) == (change.from_stage, change.to_stage)
                if change.to_stage in ("lost", "abandoned"):
                    assert change.reason and change.reason.strip()

    @invariant()
    def probability_is_the_policys_for_the_stage(self):
        policy = {p.stage: p.probability for p in self.store.rows("stage_policies")}
        for opp in self.store.rows("opportunities"):
            assert opp.probability == policy[opp.stage] == opp.history[-1].probability

    @invariant()
    def closed_deals_never_change(self):
        for opp in self.store.rows("opportunities"):
            if opp.stage in CLOSED:
                snap = repr(opp)
                assert self.closed.setdefault(opp.id, snap) == snap, f"{opp.ref} changed after closing"

    @invariant()
    def at_most_one_pending_request_per_deal_and_kind(self):
        pending = [(r.subject_id, r.kind) for r in self.store.rows("approvals") if r.status == "pending"]
        assert len(pending) == len(set(pending))

    @invariant()
    def every_step_has_at_most_one_decision_by_a_distinct_eligible_person(self):
        for req in self.store.rows("approvals"):
            seqs = [d.step_seq for d in req.decisions]
            assert len(seqs) == len(set(seqs))
            deciders = [d.decider_id for d in req.decisions]
            assert len(deciders) == len(set(deciders))  # four eyes
            owner = self.store.get("opportunities", req.subject_id).owner_id
            assert req.requested_by not in deciders and owner not in deciders
            for d in req.decisions:
                assert req.step(d.step_seq).status == {"approve": "approved", "reject": "rejected"}[d.outcome]
                assert d.outcome == "approve" or (d.comment and d.comment.strip())
            assert (req.status == "pending") == (req.closed_at is None)
            if req.status == "pending":
                assert req.step(req.current_step).status == "pending"
                assert all(d.step_seq < req.current_step for d in req.decisions)
            if req.status == "approved":
                assert [s.status for s in req.steps] == ["approved"] * len(req.steps)


def test_deal_machine_keeps_its_invariants_over_1000_steps():
    STEPS_RUN.update(steps=0, calls=0, ok=0, refused=0)
    run_state_machine_as_test(DealMachine, settings=settings(
        max_examples=40, stateful_step_count=50, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    print(STEPS_RUN)
    assert STEPS_RUN["steps"] >= 1000, STEPS_RUN
    assert STEPS_RUN["ok"] >= 200 and STEPS_RUN["refused"] >= 200, STEPS_RUN  # both kinds really happened
