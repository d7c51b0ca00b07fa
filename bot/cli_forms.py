"""`ltc form create|list|rotate|disable|enable|snippet`: web forms that capture website leads.

A form's page posts to /api/v1/forms/SLUG/submissions with the form's secret; the secret is shown
once, at creation or rotation, together with an HTML snippet to paste into the website.
"""
from __future__ import annotations

import argparse
from html import escape

from rich.text import Text

from bot.cli import CliError, Out, _read, _viewer, kv_table, new_table, when
from bot.context import AppContext
from domain.model.vocab import LeadSource
from domain.services import web_forms as form_svc

DEFAULT_BASE_URL = "http://127.0.0.1:8000"  # `ltc serve`'s default address; pass the public one
SECRET_PLACEHOLDER = "PASTE-THE-FORM-SECRET-HERE"

SNIPPET = """<form method="post" action="{action}" accept-charset="utf-8">
  <input type="hidden" name="form_secret" value="{secret}">
  <input type="hidden" name="rendered_at" value="">
  <label>Name <input name="name" maxlength="100" required></label>
  <label>Company <input name="company" maxlength="200" required></label>
  <label>Email <input type="email" name="email" maxlength="200"></label>
  <label>Phone <input type="tel" name="phone" maxlength="50"></label>
  <label>Title <input name="title" maxlength="100"></label>
  <label>Message <textarea name="message" maxlength="4000"></textarea></label>
  <!-- Honeypot: hidden from people, filled in by bots. Keep it empty and off screen. -->
  <div style="position:absolute;left:-10000px" aria-hidden="true">
    <label>Website <input name="website" tabindex="-1" autocomplete="off"></label>
  </div>
  <button type="submit">Send</button>
</form>
<script>
  // The time trap: a form posted within seconds of showing is a bot.
  document.currentScript.previousElementSibling.rendered_at.value = Date.now();
</script>"""


def snippet(base_url: str, slug: str, secret: str) -> str:
    action = f"{base_url.rstrip('/')}/api/v1/forms/{slug}/submissions"
    return SNIPPET.format(action=escape(action, quote=True), secret=escape(secret, quote=True))


def _print_secret(view: form_svc.FormSecretView, args: argparse.Namespace, out: Out, title: str) -> None:
    f = view.form
    out.print(kv_table([("slug", f.slug), ("name", f.name), ("source", f.source), ("region", f.region or "—"),
                        ("origins", " ".join(f.allowed_origins) or "any"), ("redirect", f.redirect_url or "—"),
                        ("endpoint", f"{args.base_url.rstrip('/')}/api/v1/forms/{f.slug}/submissions")], title=title))
    # Only a hash is stored: this is the one time anyone sees the secret.
    out.print(Text("secret (shown once; send it as header X-LTC-Form-Secret or field form_secret):",
                   style="bold yellow"))
    out.print(Text(view.secret), soft_wrap=True)
    out.print(Text("HTML to paste into the website:", style="bold"))
    out.print(Text(snippet(args.base_url, f.slug, view.secret)), soft_wrap=True)


def cmd_create(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    with ctx.uow() as uow:
        view = form_svc.create_form({"name": args.name, "slug": args.slug, "source": args.source,
                                     "region": args.region, "allowed_origins": args.origins or [],
                                     "redirect_url": args.redirect}, actor=actor, uow=uow)
        uow.commit()
    _print_secret(view, args, out, "Web form created")
    return 0


def cmd_list(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    forms = _read(ctx, form_svc.list_forms, actor=actor)
    if not forms:
        out.print(Text('No web forms yet: ltc form create --name "Website contact" --slug contact', style="dim"))
        return 0
    table = new_table(f"Web forms ({len(forms)})")
    for col in ("slug", "name", "source", "region", "leads", "merged", "spam", "last post", "status"):
        table.add_column(col, justify="right" if col in ("leads", "merged", "spam") else "left", overflow="fold",
                         no_wrap=col in ("slug", "status"))
    for f in forms:
        status = Text("active", style="green") if f.active else Text("disabled", style="red")
        n = f.submissions
        table.add_row(f.slug, f.name, f.source, f.region or "—", str(n.get("created", 0)), str(n.get("merged", 0)),
                      str(n.get("spam", 0)), when(f.last_received_at), status)
    out.print(table)
    return 0


def cmd_rotate(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    with ctx.uow() as uow:
        view = form_svc.rotate_secret(args.slug, actor=actor, uow=uow)
        uow.commit()
    _print_secret(view, args, out, "New secret: the old one no longer works")
    return 0


def cmd_active(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    with ctx.uow() as uow:
        view = form_svc.set_form_active(args.slug, args.active, actor=actor, uow=uow)
        uow.commit()
    if view.active:
        out.print(Text(f"Web form '{view.slug}' is active: its endpoint takes posts again.", style="green"))
    else:
        out.print(Text(f"Web form '{view.slug}' is disabled: its endpoint answers 404.", style="yellow"))
    return 0


def cmd_snippet(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    slugs = [f.slug for f in _read(ctx, form_svc.list_forms, actor=actor)]
    if args.slug not in slugs:
        raise CliError(f"no web form '{args.slug}'", allowed=slugs)
    out.print(Text(snippet(args.base_url, args.slug, SECRET_PLACEHOLDER)), soft_wrap=True)
    out.print(Text("The secret is not stored: use the one printed at creation, or `ltc form rotate`.", style="dim"))
    return 0


def add_commands(add, viewer: argparse.ArgumentParser) -> None:
    parent = add("form", None, "web forms that capture website leads (admin or sales ops)")
    sub = parent.add_subparsers(dest="form_command", metavar="ACTION", required=True)
    base = argparse.ArgumentParser(add_help=False)
    base.add_argument("--base-url", default=DEFAULT_BASE_URL, metavar="URL",
                      help=f"the server's public address, for the endpoint and snippet (default {DEFAULT_BASE_URL})")

    p = sub.add_parser("create", parents=[viewer, base], help="create a form and print its secret and HTML once",
                       description="create a web form; prints its secret (once) and an HTML snippet")
    p.set_defaults(func=cmd_create)
    p.add_argument("--name", required=True, help='what the form is, e.g. "Website contact"')
    p.add_argument("--slug", required=True, help="its address: lowercase letters, digits, dashes (e.g. contact)")
    p.add_argument("--source", default=LeadSource.WEBSITE.value, choices=[s.value for s in LeadSource],
                   help="the leads' source (default website)")
    p.add_argument("--region", default="", help="the leads' region when the visitor gives none (drives assignment)")
    p.add_argument("--origin", dest="origins", action="append", metavar="ORIGIN",
                   help="a web origin allowed to post from a browser, e.g. https://www.example.com (repeat; "
                        "none = any)")
    p.add_argument("--redirect", metavar="URL", help="where a plain HTML form sends the visitor after posting")
    sub.add_parser("list", parents=[viewer], help="list forms with their submission counts").set_defaults(func=cmd_list)
    p = sub.add_parser("rotate", parents=[viewer, base], help="give a form a new secret (the old one stops working)")
    p.set_defaults(func=cmd_rotate)
    p.add_argument("slug", metavar="SLUG")
    for action, active, help_ in (("disable", False, "disable a form: its endpoint answers 404"),
                                  ("enable", True, "enable a disabled form again")):
        p = sub.add_parser(action, parents=[viewer], help=help_)
        p.set_defaults(func=cmd_active, active=active)
        p.add_argument("slug", metavar="SLUG")
    p = sub.add_parser("snippet", parents=[viewer, base], help="print the HTML for a form (secret not included)")
    p.set_defaults(func=cmd_snippet)
    p.add_argument("slug", metavar="SLUG")
