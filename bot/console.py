"""`ltc chat --as USER`: the agent in a terminal, over the same tools, memory and confirmations.

Proposals are confirmed in place (y/n). The outbox worker and the job scheduler run beside the
REPL, so nudges for this user appear before the next prompt, as they would in Slack or WeCom.
"""
from __future__ import annotations

import queue
import uuid
from collections.abc import Callable

from rich.panel import Panel
from rich.text import Text

from bot.agent.llm import model_label
from bot.agent.runtime import Agent
from domain.actor import Actor, Channel
from domain.errors import LTCError
from prompts.messages import render
from tools import runner

QUIT = {"/quit", "/exit", "quit", "exit", "退出"}


class QueueNotifier:
    """Nudges from the outbox, held until the REPL can print them between turns."""

    def __init__(self) -> None:
        self.items: queue.Queue = queue.Queue()

    def notify(self, notice) -> None:
        self.items.put(notice)


class ConsoleChat:
    def __init__(self, app, out, *, actor: Actor, agent: Agent | None = None, thread: str | None = None,
                 read: Callable[[str], str] = input, locale: str | None = None) -> None:
        self.app, self.out, self.read = app, out, read
        self.agent = agent or Agent(app)
        self.actor = actor
        self.person = self.agent.person(actor)
        self.forced_locale = locale  # --lang; otherwise each turn answers in the language it was asked in
        self.locale = locale or self.person.locale
        self.thread = thread or f"console:{actor.user_id}:{uuid.uuid4().hex[:8]}"
        self.notifier = QueueNotifier()
        self.backlog = 0  # outbox events delivered before the first prompt

    def banner(self) -> None:
        self.out.print(Text.assemble(("LTC Copilot ", "bold"), f"· {self.person.name} ({', '.join(self.person.roles)}) · ",
                                     (model_label(self.app.settings), "cyan")))
        self.out.print(Text(render("console.banner", self.locale), style="dim"))
        if self.backlog:
            self.out.print(Text(render("console.backlog", self.locale, n=self.backlog), style="dim"))

    def run(self) -> int:
        self.banner()
        while True:
            self._flush_notices()
            try:
                line = self.read("> ").strip()
            except (EOFError, KeyboardInterrupt):
                self.out.print()
                return 0
            if not line:
                continue
            if line.lower() in QUIT:
                return 0
            if line == "/new":
                self.thread = f"console:{self.actor.user_id}:{uuid.uuid4().hex[:8]}"
                self.out.print(Text(render("console.new_thread", self.locale), style="dim"))
                continue
            self.turn(line)

    def turn(self, line: str):
        try:
            result = self.agent.reply(actor=self.actor, text=line, thread_id=self.thread, locale=self.forced_locale)
        except LTCError as e:  # e.g. the account was deactivated meanwhile: say so, keep the REPL
            self.out.print(Text(e.message, style="red"))
            return None
        text = result.text
        for proposal in result.proposals:  # the panel below shows it, with the question
            text = text.replace(render("confirm.ask", result.locale, summary=proposal.summary,
                                       minutes=proposal.minutes), "").strip()
        if text:
            self.out.print(text, soft_wrap=True)  # tables stay tables: the terminal wraps, not us
        for proposal in result.proposals:
            self.ask(proposal, result.locale)
        return result

    def ask(self, proposal: runner.Proposal, locale: str | None = None) -> runner.ToolOutcome:
        locale = locale or self.locale
        self.out.print(Panel(proposal.summary, title=render("console.proposal_title", locale), expand=False))
        try:
            answer = self.read(render("console.confirm_prompt", locale)).strip().lower()
        except (EOFError, KeyboardInterrupt):
            answer = ""
        ctx = self.agent.tool_context(Actor(self.actor.user_id, Channel.CLI, via_agent=True), locale)
        if answer in ("y", "yes", "是", "确认", "好"):
            outcome = runner.confirm(proposal.token, ctx)
        else:
            outcome = runner.cancel(proposal.token, ctx)
        style = "red" if outcome.status == "error" else ""
        self.out.print(Text(outcome.text, style=style))
        self.agent.remember(self.thread, outcome.text, user_id=self.actor.user_id)
        return outcome

    def _flush_notices(self) -> None:
        while not self.notifier.items.empty():
            notice = self.notifier.items.get_nowait()
            if notice.user_id == self.actor.user_id:
                self.out.print(Text(f"🔔 {notice.text}", style="magenta"))


def run_console(app, out, *, email: str, locale: str | None = None, read: Callable[[str], str] = input,
                background: bool = True) -> int:
    try:
        actor = app.actor_for_email(email, Channel.CLI)
    except LTCError as e:
        out.error(e.message, allowed=e.allowed)
        return 2
    chat = ConsoleChat(app, out, actor=actor, read=read, locale=locale)
    workers = []
    if background:
        from bot.jobs import Scheduler
        from bot.nudges import ChecklistNudger

        playbooks = app.playbooks()
        if playbooks is not None:
            worker = app.outbox_worker([ChecklistNudger(app.uow, playbooks, chat.notifier)])
            chat.backlog = worker.run_once()  # events from before this session: delivered, not replayed here
            chat.notifier.items = queue.Queue()
            app.after_commit.append(worker.kick)
            worker.start()
            workers.append(worker)
        workers.append(Scheduler(app).start())
    try:
        return chat.run()
    finally:
        for w in workers:
            w.stop()
