"""The contract-to-cash side of the CLI: contracts, aging, reconciliation and the daily jobs."""
from __future__ import annotations

import argparse
from datetime import date

from rich.text import Text

from bot.cli import CliError, Out, _read, _viewer, kv_table, money, new_table, parse_ref, short
from bot.context import AppContext
from domain.services import collections as collection_svc
from domain.services import contracts as contract_svc
from domain.services import reconciliation as reconciliation_svc


def _as_of(args: argparse.Namespace) -> date | None:
    if not getattr(args, "as_of", None):
        return None
    try:
        return date.fromisoformat(args.as_of)
    except ValueError:
        raise CliError(f"--as-of '{args.as_of}' is not a date (write 2026-12-31)") from None


def cmd_contracts(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    rows = _read(ctx, contract_svc.list_contracts, actor=actor, status=args.status)
    table = new_table(f"Contracts ({len(rows)})")
    for col in ("contract", "deal", "status", "value", "invoiced", "collected", "recognised"):
        table.add_column(col, justify="right" if col in ("value", "invoiced", "collected", "recognised") else "left")
    for x in rows:
        table.add_row(x.number, f"OPP-{x.opportunity_id:05d}", x.status, money(x.value, x.currency),
                      money(x.invoiced_total), money(x.paid_total), money(x.recognised_total))
    out.print(table if rows else Text("No contracts you can see.", style="dim"))
    return 0


def cmd_aging(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    report = _read(ctx, collection_svc.aging_report, actor=actor, as_of=_as_of(args))
    if not report.lines:
        out.print(Text(f"No open invoices as of {report.as_of}.", style="green"))
        return 0
    table = new_table(f"Receivables aging as of {report.as_of} (owner = the deal's AR)")
    for col in ("owner", "currency", "current", "1-30", "31-60", "61-90", "90+", "total"):
        table.add_column(col, justify="left" if col in ("owner", "currency") else "right")
    for row in report.by_owner:
        table.add_row(row.owner_name, row.currency, *(money(row.buckets[b]) for b in
                                                      ("current", "1-30", "31-60", "61-90", "90+")), money(row.total))
    out.print(table)
    detail = new_table("Open invoices, most overdue first")
    for col in ("invoice", "customer", "balance", "due", "late", "level", "promise"):
        detail.add_column(col, no_wrap=col in ("invoice", "balance", "due"),
                          justify="right" if col in ("balance", "late", "level") else "left")
    for x in report.lines:
        detail.add_row(x.invoice_number, short(x.account_name, 14), money(x.balance, x.currency),
                       x.due_on.isoformat(), str(x.days_overdue or "—"), str(x.dunning_level or "—"), x.promise or "—")
    out.print(detail)
    return 0


def cmd_reconcile(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    ref = args.ref.strip()
    if ref.upper().startswith("CT-"):
        view = _read(ctx, reconciliation_svc.reconcile_contract, ref, actor=actor)
    else:
        kind, number, _ = parse_ref(ref)
        if kind != "opportunity":
            raise CliError(f"reconcile takes an opportunity (OPP-00001) or a contract (CT-2026-00001), not {ref}")
        view = _read(ctx, reconciliation_svc.reconcile_opportunity, number, actor=actor)
    out.print(kv_table([
        ("deal", view.opportunity_ref), ("contract", view.contract_number or "—"),
        ("won", money(view.won_amount, view.currency)), ("contract value", money(view.contract_value, view.currency)),
        ("invoiced", money(view.invoiced, view.currency)), ("collected", money(view.collected, view.currency)),
        ("recognised", money(view.recognised, view.currency)),
        ("unapplied credit", money(view.unapplied_credit, view.currency)),
    ], title=f"Reconciliation of {view.contract_number or view.opportunity_ref}"))
    if view.clean:
        out.print(Text("Clean: won = contract = invoiced = collected = recognised.", style="green"))
        return 0
    out.print(Text(f"{len(view.mismatches)} mismatch(es):", style="yellow"))
    for m in view.mismatches:
        out.print(Text(f"  • [{m.code}] {m.message}"), soft_wrap=True)
    return 0


def cmd_jobs(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    """The daily sweep, each job in its own transaction, as the system user."""
    _viewer(ctx, args)
    from bot.jobs import run_jobs

    as_of = _as_of(args)
    results = [(label, str(n)) for label, n in run_jobs(ctx, as_of)]
    out.print(kv_table(results, title="Daily jobs" + (f" as of {as_of}" if as_of else "")))
    return 0


def add_commands(add, viewer: argparse.ArgumentParser) -> None:
    p = add("contracts", cmd_contracts, "list contracts with invoiced, collected and recognised amounts", viewer)
    p.add_argument("--status", help="only this status (draft, under_review, signed, executing, completed, closed)")
    add("aging", cmd_aging, "receivables aging by the deal's AR (1-30/31-60/61-90/90+)", viewer) \
        .add_argument("--as-of", dest="as_of", metavar="DATE", help="age as of this date (default today)")
    add("reconcile", cmd_reconcile, "won vs contract vs invoiced vs collected vs recognised, with reasons", viewer) \
        .add_argument("ref", metavar="OPP-or-CT-REF")
    add("jobs", cmd_jobs, "run the daily jobs: expire quotes and approvals, invoice due dates, dunning") \
        .add_argument("--as-of", dest="as_of", metavar="DATE", help="run as if today were this date")



