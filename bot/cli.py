"""`ltc`: the command line of LTC Copilot (init, demo, start, read commands, outbox worker).

Exit codes: 0 ok, 1 a domain or database error (one red `error:` line, then allowed values or
missing items when the error carries them), 2 a usage error. Reads go through the domain
services as `--as EMAIL` (default: the system admin), so row-level visibility applies.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from bot.context import AppContext
from domain.actor import Actor, Channel
from domain.demo import DemoSummary, demo_present, seed_demo
from domain.errors import Conflict, LTCError
from domain.model.vocab import LeadStatus, Role, Stage
from domain.policy_defaults import SYSTEM_EMAIL, seed_policies
from domain.services import accounts as account_svc
from domain.services import approvals as approval_svc
from domain.services import audit_trail as audit_svc
from domain.services import leads as lead_svc
from domain.services import opportunities as opp_svc
from domain.services import users as user_svc
from domain.settings import Settings, get_settings

WIDTH = 100  # tables are laid out for 100 columns when the output is not a terminal
STAGE_ORDER = [s.value for s in Stage]
STATUS_ORDER = [s.value for s in LeadStatus]
ROLE_ORDER = [r.value for r in Role]
REF_KINDS = {"LEAD": "lead", "OPP": "opportunity", "ACC": "account", "APR": "approval"}
REF_RE = re.compile(r"^\s*(LEAD|OPP|ACC|APR)\s*[-_ ]?\s*0*(\d+)\s*$", re.IGNORECASE)


class CliError(Exception):
    """An error of the edge itself (not initialised, bad reference…): printed like a domain error."""

    def __init__(self, message: str, *, allowed: Iterable[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.allowed = list(allowed) if allowed is not None else None
        self.missing = None


# =============================================================================================
# Formatting helpers
# =============================================================================================

def money(amount: Decimal | str | int | float | None, currency: str = "") -> str:
    if amount is None:
        return "—"
    value = Decimal(str(amount))
    text = f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"
    return f"{currency} {text}".strip()


def money_lines(by_currency: dict[str, Decimal]) -> str:
    return "\n".join(money(v, c) for c, v in sorted(by_currency.items())) or "—"


def when(value: datetime | date | None, *, time_of_day: bool = True) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M" if time_of_day else "%Y-%m-%d")
    return value.isoformat()


def short(value: Any, limit: int = 60) -> str:
    text = "—" if value is None or value == "" else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


PAST = {"approve": "approved", "reject": "rejected"}
STATUS_STYLE = {"approved": "green", "rejected": "red", "pending": "yellow"}


def stars(n: int) -> str:
    return "★" * n + "☆" * (5 - n)


def new_table(title: str | None = None, *, caption: str | None = None) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", caption=caption, caption_justify="left",
                 box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, expand=False, show_edge=False,
                 collapse_padding=True)


def kv_table(rows: Sequence[tuple[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=None, show_header=False,
                  pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value if isinstance(value, Text) else Text("—" if value in (None, "") else str(value)))
    return table


def stage_text(stage: str, probability: int | None = None) -> Text:
    style = {"won": "green", "lost": "red", "abandoned": "dim"}.get(stage, "cyan")
    return Text(stage + (f" {probability}%" if probability is not None else ""), style=style)


class Out:
    """The two consoles, built per run so tests capturing stdout/stderr see everything."""

    def __init__(self) -> None:
        width = None if sys.stdout.isatty() else WIDTH
        self.console = Console(width=width, markup=False, highlight=False, emoji=False)
        self.err = Console(stderr=True, width=None if sys.stderr.isatty() else WIDTH, markup=False,
                           highlight=False, emoji=False)

    def print(self, *things: Any, **kw: Any) -> None:
        if things and all(isinstance(t, Group) for t in things):
            for group in things:
                for line in group.renderables:
                    self.console.print(line, soft_wrap=True)
            return
        self.console.print(*things, **kw)

    def line(self, label: str, text: str, style: str = "") -> None:
        self.console.print(Text.assemble((f"{label:<10}", "bold"), (text, style)), soft_wrap=True)

    def error(self, message: str, *, allowed: list | None = None, missing: list | None = None) -> None:
        self.err.print(Text(f"error: {message}", style="bold red"), soft_wrap=True)
        if missing:
            self.err.print(Text("  missing: " + "; ".join(str(m) for m in missing)), soft_wrap=True)
        if allowed:
            self.err.print(Text("  allowed: " + ", ".join(str(a) for a in allowed)), soft_wrap=True)


# =============================================================================================
# Context helpers
# =============================================================================================

def _settings(args: argparse.Namespace) -> Settings:
    url = getattr(args, "db", None)
    if not url:
        return get_settings()
    if "://" not in url:  # a bare path means a SQLite file
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    return Settings(database_url=url)


def _require_schema(ctx: AppContext) -> None:
    path = ctx.sqlite_path()
    if path is not None and not path.exists():
        raise CliError(f"No database at {path}: run `ltc init` (or `ltc start`) first")
    if not ctx.schema_ready():
        raise CliError(f"The database {ctx.display_url()} is not initialised or not up to date: run `ltc init`")


def _viewer(ctx: AppContext, args: argparse.Namespace) -> Actor:
    _require_schema(ctx)
    email = getattr(args, "as_email", None) or SYSTEM_EMAIL
    return ctx.actor_for_email(email, Channel.CLI)


def _read(ctx: AppContext, fn: Callable[..., Any], *a: Any, actor: Actor, **kw: Any) -> Any:
    """Run one read use case in its own unit of work."""
    with ctx.uow() as uow:
        return fn(*a, actor=actor, uow=uow, **kw)


def _people(ctx: AppContext, actor: Actor) -> dict[int, user_svc.UserView]:
    return {u.id: u for u in _read(ctx, user_svc.list_users, actor=actor)}


def _who(users: dict[int, user_svc.UserView], uid: int | None) -> str:
    if uid is None:
        return "—"
    u = users.get(uid)
    if u is None:
        return f"user {uid}"
    return (u.name_zh or u.name_en) if u.locale == "zh" else u.name_en


def _both_names(u: user_svc.UserView) -> str:
    if u.name_zh and u.name_zh != u.name_en:
        return f"{u.name_zh} {u.name_en}" if u.locale == "zh" else f"{u.name_en} {u.name_zh}"
    return u.name_en


def parse_ref(ref: str) -> tuple[str, int, str]:
    """'opp-1' → ('opportunity', 1, 'OPP-00001')."""
    m = REF_RE.match(ref or "")
    if not m:
        raise CliError(f"'{ref}' is not a reference I know: write e.g. OPP-00001 or opp-1",
                       allowed=[f"{p}-00001" for p in REF_KINDS])
    prefix, number = m.group(1).upper(), int(m.group(2))
    if number <= 0:
        raise CliError(f"'{ref}': reference numbers start at 1")
    if number > 2**31 - 1:  # beyond every id column: say so instead of overflowing the driver
        raise CliError(f"'{ref}': no record has a number that large")
    return REF_KINDS[prefix], number, f"{prefix}-{number:05d}"


# =============================================================================================
# init / demo / start
# =============================================================================================

def _init(ctx: AppContext, out: Out) -> None:
    out.line("Database", ctx.display_url())
    before, after = ctx.migrate()
    if before == after:
        out.line("Schema", f"already at the latest revision {after}; nothing to migrate")
    elif before is None:
        out.line("Schema", f"created at revision {after} (latest)")
    else:
        out.line("Schema", f"upgraded {before} → {after} (latest)")
    with ctx.uow() as uow:
        wrote = seed_policies(uow)
        uow.commit()
        stages, gates = len(uow.policies.stage_probabilities()), len(uow.policies.gates())
    if wrote:
        out.line("Policies", f"seeded {stages} stage probabilities, {gates} decision gates, "
                             f"the system user {SYSTEM_EMAIL}")
    else:
        out.line("Policies", f"already present ({stages} stage probabilities, {gates} gates); nothing written")


CONTRACT_ORDER = ["draft", "under_review", "signed", "executing", "completed", "closed"]


def _summary_table(s: DemoSummary) -> Table:
    def detail(counts: dict[str, int], order: list[str]) -> str:
        keys = sorted(counts, key=lambda k: (order.index(k) if k in order else len(order), k))
        return " · ".join(f"{k} {counts[k]}" for k in keys)

    table = new_table()
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("detail", overflow="fold")
    table.add_row("people", str(s.users), detail(s.users_by_role, ROLE_ORDER))
    table.add_row("teams", str(s.teams), "")
    table.add_row("leads", str(s.leads), detail(s.leads_by_status, STATUS_ORDER))
    table.add_row("accounts", str(s.accounts), f"{s.contacts} contacts")
    table.add_row("opportunities", str(s.opportunities), detail(s.opportunities_by_stage, STAGE_ORDER))
    table.add_row("approvals", str(s.approvals), detail(s.approvals_by_status, []))
    table.add_row("activities", str(s.activities), "")
    table.add_row("contracts", str(s.contracts), detail(s.contracts_by_status, CONTRACT_ORDER))
    table.add_row("invoices", str(s.invoices), detail(s.invoices_by_status, ["issued", "partially_paid", "paid"])
                  + (f"; {s.payments} payments" if s.payments else ""))
    table.add_row("audit rows", str(s.audit_rows), "")
    table.add_row("events", str(s.outbox_events), "in the outbox (ltc worker --once delivers them)")
    return table


def cmd_init(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    _init(ctx, out)
    return 0


def cmd_demo(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    if args.reset:
        out.line("Reset", ctx.wipe())
    _init(ctx, out)
    summary = seed_demo(ctx.uow)
    out.line("Demo", summary.message, "green" if summary.created else "yellow")
    out.print()
    out.print(_summary_table(summary))
    return 0


def cmd_start(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    _init(ctx, out)
    with ctx.uow() as uow:
        present = demo_present(uow)
    if present:
        out.line("Demo", "already present; nothing written", "dim")
    else:
        try:
            summary = seed_demo(ctx.uow)
            out.line("Demo", summary.message, "green")
        except Conflict:
            out.line("Demo", "skipped: this database already holds data of its own", "dim")
    try:
        out.line("Playbooks", ctx.build_index().summary(), "green")
    except Exception as exc:  # the CRM works without coaching; say why it is missing
        out.line("Playbooks", f"index not built: {exc}", "yellow")
    actor = ctx.system_actor(Channel.CLI)
    users = _people(ctx, actor)
    leads = _read(ctx, lead_svc.list_leads, actor=actor, limit=1000)
    opps = _read(ctx, opp_svc.list_opportunities, actor=actor, limit=1000)
    pending = _pending_approvals(ctx, actor, opps)
    for part in (_people_by_role(users), _leads_by_status(leads), _pipeline(opps),
                 _pending_table(pending, users, opps), _hints(args, users, pending, out.console.width)):
        out.print()
        out.print(part)
    return 0


def _people_by_role(users: dict[int, user_svc.UserView]) -> Table:
    by_role: dict[str, list[str]] = defaultdict(list)
    for u in users.values():
        if u.email == SYSTEM_EMAIL:
            continue
        for r in u.roles:
            by_role[r].append(_who(users, u.id) + (f" ({u.region})" if u.region else ""))
    table = new_table(f"People by role ({sum(1 for u in users.values() if u.email != SYSTEM_EMAIL)})")
    table.add_column("role")
    table.add_column("#", justify="right")
    table.add_column("who", overflow="fold")
    for role in ROLE_ORDER:
        if by_role.get(role):
            table.add_row(role, str(len(by_role[role])), ", ".join(by_role[role]))
    return table


def _leads_by_status(leads: list[lead_svc.LeadView]) -> Table:
    counts = Counter(x.status for x in leads)
    table = new_table(f"Leads by status ({len(leads)})")
    for status in STATUS_ORDER:
        table.add_column(status, justify="right")
    table.add_row(*[str(counts.get(s, 0)) for s in STATUS_ORDER])
    return table


def _pipeline(opps: list[opp_svc.OpportunityView]) -> Table:
    rows: dict[str, dict[str, Any]] = {s: {"n": 0, "amount": defaultdict(Decimal), "weighted": defaultdict(Decimal),
                                          "p": None} for s in STAGE_ORDER}
    open_total = {"n": 0, "amount": defaultdict(Decimal), "weighted": defaultdict(Decimal)}
    for o in opps:
        row = rows[o.stage]
        weighted = (o.amount * o.probability / 100).quantize(Decimal("1"))
        row["n"] += 1
        row["p"] = o.probability
        row["amount"][o.currency] += o.amount
        row["weighted"][o.currency] += weighted
        if o.stage not in ("won", "lost", "abandoned"):
            open_total["n"] += 1
            open_total["amount"][o.currency] += o.amount
            open_total["weighted"][o.currency] += weighted
    table = new_table(f"Pipeline by stage ({len(opps)} opportunities)")
    table.add_column("stage")
    table.add_column("prob", justify="right")
    table.add_column("deals", justify="right")
    table.add_column("amount", justify="right")
    table.add_column("weighted", justify="right")
    for stage in STAGE_ORDER:
        row = rows[stage]
        table.add_row(stage_text(stage), f"{row['p']}%" if row["p"] is not None else "", str(row["n"]),
                      money_lines(row["amount"]), money_lines(row["weighted"]))
    table.add_section()
    table.add_row(Text("open pipeline", style="bold"), "", str(open_total["n"]), money_lines(open_total["amount"]),
                  money_lines(open_total["weighted"]))
    return table


def _pending_approvals(ctx: AppContext, actor: Actor,
                       opps: list[opp_svc.OpportunityView]) -> list[approval_svc.ApprovalView]:
    ids = sorted(o.next_gate.pending_approval_id for o in opps if o.next_gate and o.next_gate.pending_approval_id)
    return [_read(ctx, approval_svc.get_approval, i, actor=actor) for i in ids]


def _pending_table(pending: list[approval_svc.ApprovalView], users: dict[int, user_svc.UserView],
                   opps: list[opp_svc.OpportunityView]) -> Table:
    by_ref = {o.ref: o for o in opps}
    table = new_table(f"Pending approvals ({len(pending)})")
    table.add_column("approval", no_wrap=True)
    table.add_column("deal", overflow="fold", min_width=30)
    table.add_column("waiting for", overflow="fold", min_width=20)
    for a in pending:
        step = next((s for s in a.steps if s.seq == a.current_step), None)
        opp = by_ref.get(a.subject_ref)
        approval = Text(a.ref, style="bold").append(f"\n{a.kind}")
        deal = Text(a.subject_ref, style="bold").append(f" {opp.name}" if opp else "")
        amount = money(opp.amount, opp.currency) if opp else ""
        deal.append(f"\n{amount} · requested {when(a.created_at, time_of_day=False)}",
                    style="dim")
        deciders = ", ".join(_who(users, uid) for uid in a.eligible_approver_ids) or "nobody eligible!"
        waiting = Text(deciders, style="yellow").append(
            f"\nstep {a.current_step}/{len(a.steps)}: {step.role if step else ''}", style="dim")
        table.add_row(approval, deal, waiting)
    if not pending:
        table.add_row("—", "nothing is waiting for a decision", "")
    return table


def _hints(args: argparse.Namespace, users: dict[int, user_svc.UserView],
           pending: list[approval_svc.ApprovalView], width: int = WIDTH) -> Group:
    db = f"--db {args.db} " if getattr(args, "db", None) else ""
    rep = next((u for u in users.values() if "sales_rep" in u.roles), None)
    decider = next((users[a.eligible_approver_ids[0]] for a in pending if a.eligible_approver_ids), None)
    deal = pending[0].subject_ref if pending else "OPP-00001"
    hints = [
        (f"ltc {db}opps --stage negotiate", "deals closest to signature"),
        (f"ltc {db}show {deal}", "a deal: iron triangle, history, next gate, account 360"),
        (f"ltc {db}leads --status nurturing", "leads being nurtured"),
        (f"ltc {db}audit {deal}", "who changed what, when, through which channel"),
        (f"ltc {db}worker --once", "deliver the pending events (notifications) once"),
    ]
    if decider is not None:
        hints.insert(2, (f"ltc {db}approvals --as {decider.email}", f"what {_who(users, decider.id)} must decide"))
    if rep is not None:
        hints.insert(3, (f"ltc {db}opps --as {rep.email}", f"the pipeline as {_who(users, rep.id)} (a rep) sees it"))
    lines = [Text("Next: read commands (each takes --as EMAIL to see what that person sees)", style="bold")]
    for command, why in hints:
        line = Text.assemble("  ", (command, "cyan"), ("  # " + why, "dim"))
        if line.cell_len > width:  # the comment goes on its own line rather than wrapping the command
            line = Text.assemble("  ", (command, "cyan"), ("\n    # " + why, "dim"))
        lines.append(line)
    return Group(*lines)


# =============================================================================================
# Read commands
# =============================================================================================

def cmd_leads(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    leads = _read(ctx, lead_svc.list_leads, actor=actor, status=args.status, limit=args.limit)
    table = new_table(f"Leads{' (' + args.status + ')' if args.status else ''}: {len(leads)}")
    table.add_column("ref", no_wrap=True)
    table.add_column("status / source", no_wrap=True)
    table.add_column("company / contact", overflow="fold", min_width=24)
    table.add_column("owner", overflow="fold")
    table.add_column("score", justify="right")
    table.add_column("region", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for x in sorted(leads, key=lambda x: x.id):
        status = Text(x.status, style={"converted": "green", "disqualified": "red"}.get(x.status, "cyan"))
        status.append(f"\n{x.source}", style="dim")
        company = Text(x.company).append(f"\n{x.contact_name}" + (f" · {x.title}" if x.title else ""), style="dim")
        if x.disqualify_reason:
            company.append(f"\n{short(x.disqualify_reason, 80)}", style="red")
        table.add_row(x.ref, status, company, x.owner_name or "unassigned", str(x.score), x.region or "—",
                      when(x.created_at, time_of_day=False))
    out.print(table)
    return 0


def _next_gate_cell(o: opp_svc.OpportunityView) -> Text:
    g = o.next_gate
    if g is None:
        if o.close_reason:
            return Text(short(o.close_reason, 34), style="dim")
        nxt = o.allowed_next[0] if o.allowed_next else None
        return Text(f"→ {nxt}\nno gate" if nxt else "—", style="dim")
    if g.pending_approval_id:
        return Text(f"{g.kind}\nwaiting APR-{g.pending_approval_id:05d}", style="yellow")
    if g.missing:
        return Text(f"{g.kind}\n{len(g.missing)} missing", style="red")
    return Text(f"{g.kind}\nready to request", style="green")


def cmd_opps(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    owner_id = ctx.actor_for_email(args.owner).user_id if args.owner else None
    opps = _read(ctx, opp_svc.list_opportunities, actor=actor, stage=args.stage, owner_id=owner_id, limit=args.limit)
    filters = ", ".join(f for f in (args.stage, args.owner and f"owner {args.owner}") if f)
    viewer = "" if actor.user_id == ctx.system_actor().user_id else f" as seen by {args.as_email}"
    table = new_table(f"Opportunities{' (' + filters + ')' if filters else ''}{viewer}: {len(opps)}")
    table.add_column("ref", no_wrap=True)
    table.add_column("stage", no_wrap=True)
    table.add_column("deal / account", overflow="fold", min_width=24)
    table.add_column("amount", justify="right", no_wrap=True)
    table.add_column("AR", overflow="fold", max_width=12)
    table.add_column("next gate", overflow="fold", max_width=18)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for o in sorted(opps, key=lambda o: o.id):
        totals[o.currency] += o.amount
        stage = stage_text(o.stage).append(f"\n{o.probability}%", style="dim")
        table.add_row(o.ref, stage, Text(o.name + "\n").append(o.account_name, style="dim"),
                      money(o.amount, o.currency), o.owner_name, _next_gate_cell(o))
    if opps:
        table.caption = "total " + ", ".join(money(v, c) for c, v in sorted(totals.items()))
    out.print(table)
    return 0


def cmd_accounts(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    accounts = _read(ctx, account_svc.list_accounts, actor=actor, limit=args.limit)
    table = new_table(f"Accounts: {len(accounts)}")
    table.add_column("ref", no_wrap=True)
    table.add_column("account", overflow="fold")
    table.add_column("industry", overflow="fold")
    table.add_column("region", no_wrap=True)
    table.add_column("tier", no_wrap=True)
    table.add_column("AR", overflow="fold")
    for a in sorted(accounts, key=lambda a: a.id):
        table.add_row(a.ref, a.name, a.industry or "—", a.region or "—", a.tier, a.owner_name or "—")
    out.print(table)
    return 0


def cmd_users(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    users = _people(ctx, actor)
    table = new_table(f"People: {len(users)}")
    table.add_column("id", justify="right")
    table.add_column("name", overflow="fold")
    table.add_column("email", no_wrap=True)
    table.add_column("role / region", no_wrap=True)
    table.add_column("manager", overflow="fold")
    table.add_column("chat", overflow="fold")
    for u in users.values():
        chat = "\n".join(x for x in (u.slack_user_id and f"slack {u.slack_user_id}",
                                     u.wecom_userid and f"wecom {u.wecom_userid}") if x) or "—"
        other = u.name_en if u.locale == "zh" else u.name_zh
        name = Text(_who(users, u.id), style="" if u.active else "dim strike")
        if other and other != name.plain:
            name.append(f"\n{other}", style="dim")
        role = Text(", ".join(u.roles)).append(f"\n{u.region or '—'}", style="dim")
        table.add_row(str(u.id), name, u.email, role, _who(users, u.manager_id), chat)
    out.print(table)
    return 0


def _approvals_table(title: str, approvals: list[approval_svc.ApprovalView],
                     users: dict[int, user_svc.UserView]) -> Table:
    table = new_table(title)
    table.add_column("approval", no_wrap=True)
    table.add_column("deal", overflow="fold", min_width=30)
    table.add_column("your step / requested", overflow="fold")
    for a in approvals:
        step = next((s for s in a.steps if s.seq == a.current_step), None)
        ctx = a.context or {}
        deal = Text(a.subject_ref, style="bold").append(f" {ctx.get('opportunity_name', '')}")
        if ctx.get("amount"):
            deal.append(f"\n{money(ctx['amount'], ctx.get('currency', ''))}")
        if ctx.get("note"):
            deal.append(f"\n“{short(ctx['note'], 80)}”", style="dim")
        earlier = [f"{d.decider_name} {PAST.get(d.outcome, d.outcome)}" for d in a.decisions]
        who = Text(f"step {a.current_step}/{len(a.steps)}: {step.role if step else ''}")
        who.append(f"\n{a.requested_by_name} · {when(a.created_at, time_of_day=False)}", style="dim")
        if earlier:
            who.append("\nbefore you: " + ", ".join(earlier), style="dim")
        table.add_row(Text(a.ref, style="bold").append(f"\n{a.kind}"), deal, who)
    return table


def cmd_approvals(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    users = _people(ctx, actor)
    mine = _read(ctx, approval_svc.list_my_approvals, actor=actor)
    me = _who(users, actor.user_id)
    if not mine:
        out.print(Text(f"Nothing is waiting for {me}'s decision.", style="green"))
        deciders = sorted({u.email for u in users.values()
                           if set(u.roles) & {"sales_manager", "director", "finance"}})
        if deciders:
            out.print(Text(f"Approvers here: {', '.join(deciders)} (try --as one of them)", style="dim"),
                      soft_wrap=True)
        return 0
    out.print(_approvals_table(f"Waiting for {me}'s decision: {len(mine)}", mine, users))
    return 0


# --- show ------------------------------------------------------------------------------------------

def cmd_show(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    kind, number, ref = parse_ref(args.ref)
    actor = _viewer(ctx, args)
    users = _people(ctx, actor)
    {"lead": _show_lead, "opportunity": _show_opp, "account": _show_account,
     "approval": _show_approval}[kind](ctx, actor, users, number, out)
    return 0


def _show_lead(ctx: AppContext, actor: Actor, users, lead_id: int, out: Out) -> None:
    with ctx.uow() as uow:
        lead = lead_svc.get_lead(lead_id, actor=actor, uow=uow)  # checks visibility first
        activities = [account_svc.ActivityLine(id=a.id, kind=a.kind, subject=a.subject, occurred_at=a.occurred_at,
                                               user_id=a.user_id, opportunity_id=a.opportunity_id)
                      for a in uow.activities.for_subject(lead_id=lead.id, limit=50)]
    title = Text(f"{lead.ref}  {lead.company}", style="bold")
    out.print(title)
    out.print(kv_table([
        ("status", Text(lead.status + (f" — {lead.disqualify_reason}" if lead.disqualify_reason else ""))),
        ("allowed next", ", ".join(lead.allowed_next) or "none (final)"),
        ("source", lead.source), ("contact", " · ".join(x for x in (lead.contact_name, lead.title) if x)),
        ("email", lead.email), ("phone", lead.phone), ("region", lead.region),
        ("need", lead.need), ("budget", money(lead.budget, lead.currency) if lead.budget is not None else None),
        ("timeline", lead.timeline), ("authority", lead.authority), ("notes", lead.notes),
        ("owner", lead.owner_name or "unassigned"), ("created", when(lead.created_at)),
        ("converted to", " · ".join(x for x in (lead.account_id and f"ACC-{lead.account_id:05d}",
                                               lead.opportunity_id and f"OPP-{lead.opportunity_id:05d}") if x)),
    ]))
    score = new_table(f"Score {lead.score}/100")
    score.add_column("factor")
    score.add_column("points", justify="right")
    score.add_column("why", overflow="fold")
    for r in lead.score_reasons:
        score.add_row(r.factor, str(r.points), r.why)
    out.print(score)
    out.print(_activities_table(activities, users))


def _activities_table(activities, users, title: str = "Activities") -> Table:
    table = new_table(f"{title} ({len(activities)})")
    table.add_column("when", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("subject", overflow="fold")
    table.add_column("by", overflow="fold")
    table.add_column("deal", no_wrap=True)
    for a in activities:
        table.add_row(when(a.occurred_at), a.kind, a.subject, _who(users, a.user_id),
                      f"OPP-{a.opportunity_id:05d}" if a.opportunity_id else "")
    if not activities:
        table.add_row("—", "", "nothing logged yet", "", "")
    return table


def _show_opp(ctx: AppContext, actor: Actor, users, opp_id: int, out: Out) -> None:
    o = _read(ctx, opp_svc.get_opportunity, opp_id, actor=actor)
    approvals = _read(ctx, approval_svc.approvals_for, opp_id, actor=actor)
    weighted = (o.amount * o.probability / 100).quantize(Decimal("1"))
    out.print(Text.assemble((f"{o.ref}  {o.name}  ", "bold"), stage_text(o.stage, o.probability)))
    signed = None
    if o.deliverability_signed_at:
        signed = f"signed off {when(o.deliverability_signed_at)}"
    out.print(kv_table([
        ("account", f"ACC-{o.account_id:05d} {o.account_name}"),
        ("amount", f"{money(o.amount, o.currency)}   weighted {money(weighted, o.currency)}"),
        ("budget", money(o.budget, o.currency) if o.budget is not None else None),
        ("stage", f"{o.stage} ({o.probability}%); allowed next: {', '.join(o.allowed_next) or 'none (closed)'}"),
        ("close reason", o.close_reason),
        ("expected close", when(o.expected_close_date)), ("region", o.region),
        ("competitors", ", ".join(o.competitors) or None), ("next step", o.next_step),
        ("customer need", o.customer_need), ("solution (SR)", o.solution_summary),
        ("delivery plan (FR)", o.delivery_plan), ("deliverability", signed or "not signed off"),
    ]))
    # Iron triangle and the rest of the deal team.
    team = new_table("Iron triangle and deal team")
    team.add_column("seat", no_wrap=True)
    team.add_column("who", overflow="fold")
    team.add_column("email", overflow="fold")
    seats = {m.role: m for m in o.members}
    for seat, label in (("AR", "AR account responsible"), ("SR", "SR solution responsible"),
                        ("FR", "FR fulfillment responsible")):
        m = seats.get(seat)
        u = users.get(m.user_id) if m else None
        team.add_row(label, m.name if m else Text("— not assigned", style="red"), u.email if u else "")
    for m in o.members:
        if m.role not in ("AR", "SR", "FR"):
            u = users.get(m.user_id)
            team.add_row(m.role, m.name, u.email if u else "")
    out.print(team)
    # Stage history.
    history = new_table("Stage history")
    history.add_column("when", no_wrap=True)
    history.add_column("move", no_wrap=True)
    history.add_column("%", justify="right")
    history.add_column("by", overflow="fold")
    history.add_column("via / reason", overflow="fold")
    for h in o.history:
        move = f"{h.from_stage} → {h.to_stage}" if h.from_stage else f"created in {h.to_stage}"
        via = " ".join(x for x in (h.approval_id and f"APR-{h.approval_id:05d}", h.reason) if x)
        history.add_row(when(h.changed_at), move, str(h.probability), _who(users, h.changed_by), via or "")
    out.print(history)
    # Next gate.
    g = o.next_gate
    if g is None:
        nxt = Text("none: the deal is closed" if o.stage in ("won", "lost", "abandoned") else
                   f"no gate before {o.allowed_next[0] if o.allowed_next else '—'}: the AR moves it")
    elif g.pending_approval_id:
        pend = next((a for a in approvals if a.id == g.pending_approval_id), None)
        who = ", ".join(_who(users, i) for i in pend.eligible_approver_ids) if pend else "?"
        nxt = Text(f"{g.kind} → {g.to_stage}: APR-{g.pending_approval_id:05d} is waiting for a decision "
                   f"(step {pend.current_step if pend else '?'}: {who})", style="yellow")
    elif g.missing:
        nxt = Text(f"{g.kind} → {g.to_stage}: cannot be requested yet; missing:\n", style="red")
        nxt.append("\n".join(f"  • {m}" for m in g.missing), style="")
    else:
        nxt = Text(f"{g.kind} → {g.to_stage}: everything is in place; the AR can request it", style="green")
    if g is not None and not g.pending_approval_id:
        last = next((a for a in reversed(approvals) if a.kind == g.kind), None)
        if last is not None and last.status == "rejected":
            why = last.decisions[-1].comment if last.decisions else None
            nxt.append(f"\nThe last {g.kind} request ({last.ref}) was rejected by "
                       f"{last.decisions[-1].decider_name if last.decisions else '?'}"
                       + (f": “{why}”" if why else ""), style="red")
    out.print(Text("Next gate", style="bold"))
    out.print(nxt)
    out.print()
    # Approvals.
    table = new_table(f"Approvals ({len(approvals)})")
    table.add_column("ref", no_wrap=True)
    table.add_column("gate", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("requested", no_wrap=True)
    table.add_column("decisions", overflow="fold")
    for a in approvals:
        lines = Text()
        for d in a.decisions:
            lines.append(f"{d.step_seq}. {d.decider_name} {PAST.get(d.outcome, d.outcome)} "
                         f"{when(d.decided_at)} · {d.channel}", style="red" if d.outcome == "reject" else "")
            if d.comment:
                lines.append(f"\n   “{d.comment}”", style="dim")
            lines.append("\n")
        if a.status == "pending":
            lines.append(f"waiting: step {a.current_step} "
                         f"({', '.join(_who(users, i) for i in a.eligible_approver_ids)})", style="yellow")
        lines.rstrip()
        table.add_row(a.ref, a.kind, a.status, f"{when(a.created_at, time_of_day=False)}\n{a.requested_by_name}",
                      lines if lines.plain else Text("—"))
    if not approvals:
        table.add_row("—", "", "", "", "no decision requested yet")
    out.print(table)
    # Account 360 (the customer behind the deal), when the viewer may see it.
    try:
        a360 = _read(ctx, account_svc.account_360, o.account_id, actor=actor)
    except LTCError as e:
        out.print(Text(f"Account 360 hidden: {e.message}", style="dim"))
        return
    _print_account_360(a360, users, out, title=f"Account 360: {a360.account.ref} {a360.account.name}")


def _show_account(ctx: AppContext, actor: Actor, users, account_id: int, out: Out) -> None:
    a360 = _read(ctx, account_svc.account_360, account_id, actor=actor)
    _print_account_360(a360, users, out, title=f"{a360.account.ref}  {a360.account.name}")


def _print_account_360(a360: account_svc.Account360, users, out: Out, *, title: str) -> None:
    acc = a360.account
    out.print(Text(title, style="bold"))
    out.print(kv_table([("industry", acc.industry), ("region", acc.region), ("tier", acc.tier),
                        ("AR (owner)", acc.owner_name),
                        ("open pipeline", ", ".join(money(v, c) for c, v in sorted(a360.open_pipeline.items())))]))
    contacts = new_table(f"Decision chain ({len(a360.contacts)} contacts)")
    contacts.add_column("ref", no_wrap=True)
    contacts.add_column("name", overflow="fold")
    contacts.add_column("title", overflow="fold")
    contacts.add_column("decision role", no_wrap=True)
    contacts.add_column("relationship", no_wrap=True)
    contacts.add_column("email / phone", overflow="fold")
    for c in a360.contacts:
        contacts.add_row(c.ref, c.name, c.title or "—", c.decision_role.replace("_", " "), stars(c.relationship),
                         c.email or c.phone or "—")
    if a360.decision_chain_gaps:
        contacts.caption = "gaps: " + "; ".join(a360.decision_chain_gaps)
    out.print(contacts)
    opps = new_table(f"Opportunities ({len(a360.opportunities)})")
    opps.add_column("ref", no_wrap=True)
    opps.add_column("deal", overflow="fold")
    opps.add_column("stage", no_wrap=True)
    opps.add_column("amount", justify="right", no_wrap=True)
    opps.add_column("AR", overflow="fold")
    for o in sorted(a360.opportunities, key=lambda o: o.id):
        opps.add_row(o.ref, o.name, stage_text(o.stage, o.probability), money(o.amount, o.currency),
                     _who(users, o.owner_id))
    out.print(opps)
    out.print(_activities_table(a360.activities, users, "Recent activities"))


def _show_approval(ctx: AppContext, actor: Actor, users, approval_id: int, out: Out) -> None:
    a = _read(ctx, approval_svc.get_approval, approval_id, actor=actor)
    out.print(Text.assemble((f"{a.ref}  {a.title}  ", "bold"),
                            (a.status, STATUS_STYLE.get(a.status, "dim"))))
    c = a.context or {}
    out.print(kv_table([
        ("gate", a.kind), ("about", f"{a.subject_ref} {c.get('opportunity_name', '')}"),
        ("amount", money(c["amount"], c.get("currency", "")) if c.get("amount") else None),
        ("stage then", c.get("stage")), ("note", c.get("note")),
        ("requested", f"{when(a.created_at)} by {a.requested_by_name}"),
        ("expires", when(a.expires_at)), ("closed", when(a.closed_at) if a.closed_at else None),
    ]))
    steps = new_table("Steps")
    steps.add_column("#", justify="right")
    steps.add_column("role", no_wrap=True)
    steps.add_column("scope", no_wrap=True)
    steps.add_column("status", no_wrap=True)
    steps.add_column("decided / who may decide", overflow="fold")
    for s in a.steps:
        d = next((x for x in a.decisions if x.step_seq == s.seq), None)
        if d is not None:
            detail = Text(f"{d.decider_name} {PAST.get(d.outcome, d.outcome)} {when(d.decided_at)} via {d.channel}"
                          + (" (agent)" if d.via_agent else ""))
            if d.comment:
                detail.append(f"\n“{d.comment}”", style="dim")
        elif s.status == "pending":
            detail = Text(", ".join(_both_names(users[i]) if i in users else str(i)
                                    for i in a.eligible_approver_ids) or "nobody eligible", style="yellow")
        else:
            detail = Text("—", style="dim")
        steps.add_row(str(s.seq), s.role, s.scope, s.status, detail)
    out.print(steps)


# --- audit -----------------------------------------------------------------------------------------

PEOPLE_FIELDS = {"owner_id", "SR", "FR", "manager_id", "deliverability_signed_by", "actor_id", "user_id"}


def _change_lines(before: dict | None, after: dict | None, users: dict[int, user_svc.UserView]) -> Text:
    before, after = before or {}, after or {}

    def show(key: str, value: Any, limit: int) -> str:
        if key in PEOPLE_FIELDS and isinstance(value, int):
            return _who(users, value)
        return short(value, limit)

    text = Text()
    if not before and after:
        items = [(k, v) for k, v in after.items() if v not in (None, "", [], {})]
        for k, v in items[:6]:
            text.append(f"{k}: {show(k, v, 50)}\n")
        if len(items) > 6:
            text.append(f"… and {len(items) - 6} more fields\n", style="dim")
    else:
        for k in after:
            text.append(f"{k}: {show(k, before.get(k), 30)} → {show(k, after.get(k), 40)}\n")
    text.rstrip()
    return text


def cmd_link(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    """Set a person's chat identities: their WeCom userid and/or Slack member id."""
    if not (args.wecom or args.slack):
        raise CliError("say which identity to set: --wecom USERID and/or --slack MEMBER_ID")
    actor = _viewer(ctx, args)
    with ctx.uow() as uow:
        user = uow.users.by_email(args.email)
        if user is None:
            raise CliError(f"no user with email {args.email} (see `ltc users`)")
        view = None
        if args.wecom:
            view = user_svc.link_wecom_user(user.id, args.wecom, actor=actor, uow=uow)
        if args.slack:
            view = user_svc.link_slack_user(user.id, args.slack, actor=actor, uow=uow)
        uow.commit()
    out.line("Linked", f"{view.email}: wecom {view.wecom_userid or '—'}, slack {view.slack_user_id or '—'}", "green")
    return 0


def cmd_audit(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    kind, number, ref = parse_ref(args.ref)
    actor = _viewer(ctx, args)
    users = _people(ctx, actor)
    with ctx.uow() as uow:
        subjects = [(kind, number, "")]
        if kind == "opportunity":  # the deal's gate decisions belong to its story
            subjects += [("approval", a.id, a.ref) for a in
                         approval_svc.approvals_for(number, actor=actor, uow=uow)]
        rows = sorted(((label, e) for entity, entity_id, label in subjects
                       for e in audit_svc.audit_trail(entity, entity_id, actor=actor, uow=uow)),
                      key=lambda pair: pair[1].id)
    table = new_table(f"Audit trail of {ref}: {len(rows)} entries"
                      + (" (with its approvals)" if len(subjects) > 1 else ""))
    table.add_column("#", justify="right")
    table.add_column("when", no_wrap=True)
    table.add_column("who", overflow="fold")
    table.add_column("via", no_wrap=True)
    table.add_column("action", overflow="fold")
    table.add_column("changes", overflow="fold")
    for label, r in rows:
        via = r.channel + (" (agent)" if r.via_agent else "")
        table.add_row(str(r.id), when(r.at), _who(users, r.actor_id), via, f"{label} {r.action}".strip(),
                      _change_lines(r.before, r.after, users))
    out.print(table)
    return 0


# --- worker ----------------------------------------------------------------------------------------

class ConsoleNotifier:
    """Prints iron-triangle nudges (Slack and WeCom post them in the deal's thread instead)."""

    def __init__(self, out: Out) -> None:
        self.out = out

    def notify(self, notice) -> None:
        self.out.print(Text(f"→ {notice.role} (user {notice.user_id})", style="bold magenta"))
        self.out.print(notice.text)


class ConsoleSink:
    """Prints every delivered event on one line (the embedded stand-in for chat notifications)."""

    def __init__(self, out: Out) -> None:
        self.out = out
        self.count = 0

    def handle(self, key: str, topic: str, payload: dict) -> None:
        self.count += 1
        line = Text.assemble(("→ ", "green"), (f"{topic:<24}", "bold"), f" {key:<28} ",
                             (json.dumps(payload, ensure_ascii=False, separators=(",", ":")), "dim"))
        self.out.print(line, no_wrap=True, overflow="ellipsis")


def cmd_worker(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    _require_schema(ctx)
    sink = ConsoleSink(out)
    sinks: list = [sink]
    playbooks = ctx.playbooks()
    if playbooks is not None:  # coach the iron triangle on stage changes and gate requests
        from bot.nudges import ChecklistNudger

        sinks.append(ChecklistNudger(ctx.uow, playbooks, ConsoleNotifier(out)))
    if ctx.settings.slack_bot_token or ctx.settings.wecom_configured:  # what this worker takes must still reach chat
        from bot.agent.runtime import Agent
        from bot.surfaces import all_sinks

        sinks += all_sinks(ctx, Agent(ctx))
    worker = ctx.outbox_worker(sinks)
    if args.once:
        n = worker.run_once()
        out.print(Text(f"{n} event(s) delivered", style="bold"))
        return 0
    from bot.jobs import Scheduler

    out.print(Text(f"Outbox worker on {ctx.display_url()}: polling every {ctx.settings.outbox_poll_seconds}s, "
                   f"daily jobs every {ctx.settings.jobs_interval_minutes:g} min; Ctrl-C stops it", style="bold"))
    scheduler = Scheduler(ctx).start()
    try:
        while True:
            worker.run_once()
            time.sleep(ctx.settings.outbox_poll_seconds)
    except KeyboardInterrupt:
        out.print(Text(f"stopped after {sink.count} event(s) and {scheduler.runs} job run(s)", style="bold"))
    finally:
        scheduler.stop()
    return 0


# --- chat ------------------------------------------------------------------------------------

def cmd_chat(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    """The console chat: migrate and seed the demo when the database is new, then the REPL."""
    from bot.console import run_console

    if not ctx.schema_ready():
        ctx.migrate()
    with ctx.uow() as uow:
        empty = not any(u.email != SYSTEM_EMAIL for u in uow.users.all())
    if empty:
        out.line("Demo", seed_demo(ctx.uow).message, "green")
    if ctx.playbooks() is None:
        try:
            ctx.build_index()
        except Exception as exc:  # the CRM works without coaching; say why it is missing
            out.line("Playbooks", f"index not built: {exc}", "yellow")
    email = args.as_email or _default_chat_user(ctx)
    return run_console(ctx, out, email=email, locale=args.lang)


def _default_chat_user(ctx: AppContext) -> str:
    with ctx.uow() as uow:
        reps = sorted((u for u in uow.users.all() if u.active and any(r.value == "sales_rep" for r in u.roles)),
                      key=lambda u: u.id)
        if not reps:
            raise CliError("No sales rep to chat as: pass --as EMAIL")
        return reps[0].email


# --- knowledge -------------------------------------------------------------------------------

def cmd_index(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("embedding playbook sections"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=out.console, transient=True) as bar:
        task = bar.add_task("embed", total=None)
        report = ctx.build_index(rebuild=args.rebuild,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
    out.line("Index", report.summary(), "green")
    return 0


def _search(ctx: AppContext):
    search = ctx.playbooks()
    if search is None:
        raise CliError("the playbook index is empty: run `ltc index` first")
    return search


def cmd_ask(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    from tools.playbooks import SearchPlaybooksArgs, search_playbooks
    from tools.context import ToolContext

    tool_args = _tool_args(SearchPlaybooksArgs, query=args.question, stage=args.stage, role=args.role, k=args.k)
    result = search_playbooks(tool_args, ToolContext(actor=ctx.system_actor(Channel.CLI), uow=ctx.uow,
                                                     playbooks=_search(ctx)))
    if not result.passages:
        out.print(Text(result.message, style="yellow"))
        return 0
    for p in result.passages:
        out.print(Text(f"{p.citation}  [{p.doc}, {p.lang}, score {p.score:.4f}]", style="bold cyan"))
        out.print(p.text)
        out.print()
    return 0


def cmd_next(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    from tools.playbooks import WhatNextArgs, what_next
    from tools.context import ToolContext

    kind, number, _ref = parse_ref(args.ref)
    if kind != "opportunity":
        raise CliError(f"`ltc next` takes a deal reference like OPP-00012, not {args.ref}")
    actor = _viewer(ctx, args)
    with ctx.uow() as uow:
        locale = uow.users.get(actor.user_id).locale
    result = what_next(WhatNextArgs(opportunity=str(number)),
                       ToolContext(actor=actor, uow=ctx.uow, playbooks=ctx.playbooks(), locale=locale))
    out.print(result.text)
    return 0


def _tool_args(model, **values):
    """Tool argument models validate CLI input too; their errors read like domain errors."""
    from pydantic import ValidationError as ArgsError

    try:
        return model(**{k: v for k, v in values.items() if v is not None})
    except ArgsError as exc:
        err = exc.errors()[0]
        raise CliError(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None


def cmd_serve(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    """The HTTP server: Slack events at /slack/events, WeCom callbacks at /wecom/callback, /healthz."""
    import uvicorn

    from bot.server import create_server

    if not ctx.schema_ready():
        ctx.migrate()
    uvicorn.run(create_server(ctx), host=args.host, port=args.port, log_level="info")
    return 0


def cmd_slack(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    """Slack over Socket Mode: no public URL needed, only SLACK_BOT_TOKEN + SLACK_APP_TOKEN."""
    settings = ctx.settings
    if not settings.slack_app_token or not settings.slack_bot_token:
        raise CliError("Socket Mode needs SLACK_BOT_TOKEN (xoxb-...) and SLACK_APP_TOKEN (xapp-...); "
                       "for HTTP events use `ltc serve` with SLACK_SIGNING_SECRET")
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.agent.runtime import Agent
    from bot.background import ChatBackground
    from bot.slack.app import SlackServices, create_app
    from bot.surfaces import all_sinks

    if not ctx.schema_ready():
        ctx.migrate()
    agent = Agent(ctx)
    services = SlackServices(ctx, agent)
    app = create_app(settings, services)
    # cards, notices, Home and jobs; WeCom's sinks too when it is configured (one worker serves all)
    background = ChatBackground(ctx, all_sinks(ctx, agent, slack=(services, app.client))).start()
    try:
        SocketModeHandler(app, settings.slack_app_token).start()
    finally:
        background.stop()
    return 0


# =============================================================================================
# Parser and entry point
# =============================================================================================

def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return n


def build_parser() -> argparse.ArgumentParser:
    db_help = "database URL (overrides DATABASE_URL); a plain path means a SQLite file"
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS, help=db_help)
    viewer = argparse.ArgumentParser(add_help=False)
    viewer.add_argument("--as", dest="as_email", metavar="EMAIL", default=None,
                        help=f"act as this user, so their visibility applies (default: {SYSTEM_EMAIL})")

    parser = argparse.ArgumentParser(prog="ltc", description="LTC Copilot: Lead-to-Cash (线索到回款) from the command line")
    parser.add_argument("--db", metavar="URL", default=None, help=db_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, fn, help_: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, parents=[common, *parents])
        p.set_defaults(func=fn)
        return p

    add("init", cmd_init, "migrate the database to the latest schema and seed the default policies")
    add("demo", cmd_demo, "init, then seed the demo company (does nothing if it is already there)") \
        .add_argument("--reset", action="store_true", help="wipe the database first (deletes a SQLite file)")
    p = add("serve", cmd_serve, "run the HTTP server (Slack events at /slack/events, WeCom callbacks at /wecom/callback, /healthz)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    add("slack", cmd_slack, "run the Slack app over Socket Mode (needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN)")
    add("start", cmd_start, "init, seed the demo into an empty database, and print a summary")
    p = add("chat", cmd_chat, "chat with the agent in the console (offline command model unless LLM_* is set)", viewer)
    p.add_argument("--lang", choices=["en", "zh"], default=None, help="reply language (default: the user's)")
    p = add("leads", cmd_leads, "list leads", viewer)
    p.add_argument("--status", help=f"only this status ({', '.join(STATUS_ORDER)})")
    p.add_argument("--limit", type=_positive, default=200)
    p = add("opps", cmd_opps, "list opportunities", viewer)
    p.add_argument("--stage", help=f"only this stage ({', '.join(STAGE_ORDER)})")
    p.add_argument("--owner", metavar="EMAIL", help="only deals this AR owns")
    p.add_argument("--limit", type=_positive, default=200)
    add("accounts", cmd_accounts, "list accounts", viewer).add_argument("--limit", type=_positive, default=200)
    add("show", cmd_show, "show one record: LEAD-00001, OPP-00001, ACC-00001 or APR-00001", viewer) \
        .add_argument("ref", metavar="REF")
    add("approvals", cmd_approvals, "pending approvals the --as user may decide", viewer)
    add("users", cmd_users, "list people, roles and chat identities", viewer)
    p = add("link", cmd_link, "set a person's WeCom userid and/or Slack member id", viewer)
    p.add_argument("email")
    p.add_argument("--wecom", metavar="USERID", help="their WeCom (企业微信) userid, as in the WeCom admin console")
    p.add_argument("--slack", metavar="MEMBER_ID", help="their Slack member id (U…)")
    add("audit", cmd_audit, "audit trail of one record (LEAD-, OPP-, ACC-, APR-)", viewer) \
        .add_argument("ref", metavar="REF")
    add("worker", cmd_worker, "deliver outbox events to the console") \
        .add_argument("--once", action="store_true", help="deliver what is pending, then exit")
    add("index", cmd_index, "build the playbook index (incremental; --rebuild starts over)") \
        .add_argument("--rebuild", action="store_true", help="drop the index and embed everything again")
    p = add("ask", cmd_ask, "search the playbooks (Chinese or English)")
    p.add_argument("question")
    p.add_argument("--stage", help=f"only passages for this stage ({', '.join(STAGE_ORDER)})")
    p.add_argument("--role", choices=["AR", "SR", "FR"], help="only passages for this iron-triangle role")
    p.add_argument("--k", type=_positive, default=4, help="how many passages")
    add("next", cmd_next, "what should happen next on a deal (its state + the playbooks)", viewer) \
        .add_argument("ref", metavar="OPP-REF")
    from bot.cli_finance import add_commands  # the finance commands build on the helpers above

    add_commands(add, viewer)
    from bot.cli_api import add_commands as add_api_commands  # ltc apikey

    add_api_commands(add, viewer)
    from bot.cli_forms import add_commands as add_form_commands  # ltc form

    add_form_commands(add, viewer)
    from bot.cli_webhooks import add_commands as add_webhook_commands  # ltc webhook

    add_webhook_commands(add, viewer)
    from bot.cli_imports import add_commands as add_import_commands  # ltc import, ltc export

    add_import_commands(add, viewer)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage; keep its code (2, or 0 for --help)
        return exc.code if isinstance(exc.code, int) else 2
    out = Out()
    ctx: AppContext | None = None
    try:
        ctx = AppContext.from_settings(_settings(args))
        return args.func(ctx, args, out)
    except (LTCError, CliError) as exc:
        out.error(exc.message, allowed=exc.allowed, missing=exc.missing)
        return 1
    except ValidationError as exc:  # settings from the environment
        out.error(f"bad configuration: {exc.errors()[0]['msg']}")
        return 1
    except SQLAlchemyError as exc:
        out.error(f"database error: {getattr(exc, 'orig', None) or exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if ctx is not None:
            ctx.close()


if __name__ == "__main__":
    sys.exit(main())
