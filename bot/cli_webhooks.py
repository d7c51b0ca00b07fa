"""`ltc webhook add|list|disable|enable|log|show|replay`: outbound webhooks for ERP/billing.

The signing secret is printed once, by `add`. Deliveries go out from the outbox worker (`ltc worker`,
or the background of `ltc serve` / `ltc slack`); the event reference is bot/webhooks/README.md.
"""
from __future__ import annotations

import argparse
import json

from rich.text import Text

from bot.cli import Out, _read, _viewer, kv_table, new_table, short, when
from bot.context import AppContext
from domain.services import webhooks as webhook_svc

STATUS_STYLE = {"pending": "yellow", "delivered": "green", "failed": "red"}


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def cmd_add(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    with ctx.uow() as uow:
        view = webhook_svc.add_endpoint({"url": args.url, "events": args.events, "description": args.description},
                                        actor=actor, uow=uow)
        uow.commit()
    out.print(kv_table([("id", view.id), ("url", view.url), ("events", ", ".join(view.events)),
                        ("description", view.description)], title="Webhook endpoint added"))
    out.print(Text("signing secret (shown once; verify X-LTC-Signature with it):", style="bold yellow"))
    out.print(Text(view.secret or ""), soft_wrap=True)
    return 0


def cmd_list(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    endpoints = _read(ctx, webhook_svc.list_endpoints, actor=actor)
    if not endpoints:
        out.print(Text("No webhook endpoints yet: ltc webhook add https://erp.example.com/hooks --event invoice.issued",
                       style="dim"))
        return 0
    table = new_table(f"Webhook endpoints ({len(endpoints)})")
    for col in ("id", "url", "events", "description", "created", "status"):
        table.add_column(col, justify="right" if col == "id" else "left", overflow="fold")
    for e in endpoints:
        table.add_row(str(e.id), e.url, ", ".join(e.events), short(e.description, 30), when(e.created_at),
                      Text("active", style="green") if e.active else Text("disabled", style="red"))
    out.print(table)
    return 0


def cmd_active(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    with ctx.uow() as uow:
        view = webhook_svc.set_endpoint_active(args.id, args.active, actor=actor, uow=uow)
        uow.commit()
    out.print(Text(view.message, style="green" if view.active else "yellow"))
    return 0


def cmd_log(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    rows = _read(ctx, webhook_svc.list_deliveries, actor=actor, endpoint_id=args.endpoint, status=args.status,
                 event_type=args.event, limit=args.limit)
    if not rows:
        out.print(Text("No deliveries match.", style="dim"))
        return 0
    table = new_table(f"Webhook deliveries, newest first ({len(rows)})")
    for col in ("id", "endpoint", "event", "status", "tries", "code", "next try", "error"):
        table.add_column(col, justify="right" if col in ("id", "endpoint", "tries", "code") else "left",
                         overflow="fold", no_wrap=col in ("event", "status", "next try"))
    for d in rows:
        table.add_row(str(d.id), str(d.endpoint_id), d.event_type, _status(d.status), str(d.attempts),
                      str(d.last_status_code or "—"), when(d.next_attempt_at) if d.status == "pending" else "—",
                      short(d.last_error, 40))
    out.print(table)
    out.print(Text("ltc webhook show ID: the event id, every attempt and the body", style="dim"))
    return 0


def cmd_show(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    d = _read(ctx, webhook_svc.get_delivery, args.id, actor=actor)
    out.print(kv_table([("delivery", d.id), ("endpoint", d.endpoint_id), ("event", d.event_type),
                        ("event id", d.event_id), ("status", _status(d.status)), ("attempts", d.attempts),
                        ("next try", when(d.next_attempt_at) if d.status == "pending" else None),
                        ("created", when(d.created_at)), ("delivered", when(d.delivered_at))],
                       title=f"Webhook delivery {d.id}"))
    if d.log:
        table = new_table("Attempts")
        for col in ("at", "code", "ms", "error"):
            table.add_column(col, justify="right" if col in ("code", "ms") else "left", overflow="fold")
        for a in d.log:
            table.add_row(when(a.attempted_at), str(a.status_code or "—"), str(a.duration_ms), a.error or "")
        out.print(table)
    out.print(Text("body:", style="bold"))
    out.print(Text(json.dumps(d.payload, ensure_ascii=False, indent=2)), soft_wrap=True)
    return 0


def cmd_replay(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    with ctx.uow() as uow:
        view = webhook_svc.replay_delivery(args.id, actor=actor, uow=uow)
        uow.commit()
    out.print(Text(f"{view.message}; the outbox worker sends it (ltc worker --once sends it now)", style="green"))
    return 0


def _id(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not an id (a positive number)")
    return int(text)


def add_commands(add, viewer: argparse.ArgumentParser) -> None:
    parent = add("webhook", None, "outbound webhooks for ERP/billing (admin or sales ops)")
    sub = parent.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)
    kinds = [*webhook_svc.EVENT_TYPES, webhook_svc.ALL_EVENTS]

    p = sub.add_parser("add", parents=[viewer], help="subscribe a URL to events; prints the signing secret once",
                       description="subscribe a URL to events; prints the signing secret once")
    p.set_defaults(func=cmd_add)
    p.add_argument("url", metavar="URL")
    p.add_argument("--event", dest="events", action="append", required=True, choices=kinds, metavar="TYPE",
                   help=f"an event type (repeat; '*' = all): {', '.join(webhook_svc.EVENT_TYPES)}")
    p.add_argument("--description", help='what receives them, e.g. "ERP billing"')
    sub.add_parser("list", parents=[viewer], help="list endpoints").set_defaults(func=cmd_list)
    for action, active, help_ in (("disable", False, "disable an endpoint: it gets nothing until enabled"),
                                  ("enable", True, "enable a disabled endpoint (its waiting deliveries go out)")):
        p = sub.add_parser(action, parents=[viewer], help=help_)
        p.set_defaults(func=cmd_active, active=active)
        p.add_argument("id", metavar="ENDPOINT_ID", type=_id)
    p = sub.add_parser("log", parents=[viewer], help="the delivery log, newest first")
    p.set_defaults(func=cmd_log)
    p.add_argument("--status", choices=webhook_svc.STATUSES)
    p.add_argument("--endpoint", type=_id, metavar="ENDPOINT_ID")
    p.add_argument("--event", choices=webhook_svc.EVENT_TYPES, metavar="TYPE")
    p.add_argument("--limit", type=_id, default=50)
    p = sub.add_parser("show", parents=[viewer], help="one delivery: its attempts and the body sent")
    p.set_defaults(func=cmd_show)
    p.add_argument("id", metavar="DELIVERY_ID", type=_id)
    p = sub.add_parser("replay", parents=[viewer], help="send a delivery again (same event id and body)")
    p.set_defaults(func=cmd_replay)
    p.add_argument("id", metavar="DELIVERY_ID", type=_id)
