"""`ltc apikey create|list|revoke`: keys for integrations of the REST API (/api/v1)."""
from __future__ import annotations

import argparse

from rich.text import Text

from bot.cli import Out, _read, _viewer, kv_table, new_table, when
from bot.context import AppContext
from domain.services import api_keys as key_svc


def cmd_create(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    with ctx.uow() as uow:
        key = key_svc.create_key({"name": args.name, "user_email": args.user, "scopes": args.scopes},
                                 actor=actor, uow=uow)
        uow.commit()
    out.print(kv_table([("id", key.id), ("name", key.name), ("acts as", key.user_email),
                        ("scopes", " ".join(key.scopes))], title="API key created"))
    # Only a hash is stored: this is the one time anyone sees the key.
    out.print(Text("key (shown once; store it in the integration's secret store now):", style="bold yellow"))
    out.print(Text(key.key), soft_wrap=True)
    return 0


def cmd_list(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    keys = _read(ctx, key_svc.list_keys, actor=actor)
    if not keys:
        out.print(Text("No API keys yet: ltc apikey create --name NAME --user EMAIL --scope SCOPE", style="dim"))
        return 0
    table = new_table(f"API keys ({len(keys)})")
    for col in ("id", "name", "prefix", "acts as", "scopes", "created", "last used", "status"):
        # the prefix and the email are what an admin searches for: never broken across lines
        table.add_column(col, justify="right" if col == "id" else "left",
                         no_wrap=col in ("prefix", "acts as"), overflow="fold")
    for k in keys:
        status = Text(f"revoked {when(k.revoked_at)}", style="red") if k.revoked_at else Text("active", style="green")
        table.add_row(str(k.id), k.name, f"ltc_{k.prefix}_…", k.user_email, "\n".join(k.scopes),
                      when(k.created_at, time_of_day=False), when(k.last_used_at), status)
    out.print(table)
    return 0


def cmd_revoke(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    with ctx.uow() as uow:
        key = key_svc.revoke_key(args.id, actor=actor, uow=uow)
        uow.commit()
    out.print(Text(f"Revoked API key {key.id} ({key.name}, ltc_{key.prefix}_…): it is refused from now on.",
                   style="green"))
    return 0


def add_commands(add, viewer: argparse.ArgumentParser) -> None:
    parent = add("apikey", None, "API keys for integrations of the REST API at /api/v1 (admin only)")
    sub = parent.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    p = sub.add_parser("create", parents=[viewer], help="create a key and print it once",
                       description="create a key acting as a service user, within its scopes; prints it once")
    p.set_defaults(func=cmd_create)
    p.add_argument("--name", required=True, help="what the key is for, e.g. erp")
    p.add_argument("--user", required=True, metavar="EMAIL", help="the service user the key acts as")
    p.add_argument("--scope", dest="scopes", action="append", required=True, metavar="SCOPE",
                   help=f"repeat for each: <resource>:read|write or * (resources: {', '.join(key_svc.RESOURCES)})")
    sub.add_parser("list", parents=[viewer], help="list keys (never their secrets)").set_defaults(func=cmd_list)
    p = sub.add_parser("revoke", parents=[viewer], help="revoke a key: refused from the next call on")
    p.set_defaults(func=cmd_revoke)
    p.add_argument("id", type=int, metavar="ID")
