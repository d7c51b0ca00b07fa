"""The console chat: a proposal is shown, and only the user's own `y` in place executes it.

The agent runs on a scripted chat model (tests/scripted_model.py) over a real SQLite file, so the
REPL, the runtime, the tools, the confirmation store and the audit trail are all the real ones.
"""
from __future__ import annotations

from sqlalchemy import select

from bot.agent.runtime import Agent
from bot.cli import Out
from bot.console import ConsoleChat
from bot.context import AppContext
from domain.db import tables as t
from domain.services import approvals
from domain.settings import Settings
from tests import builders
from tests.scripted_model import ScriptedChatModel, call, say


def _setup(tmp_path):
    app = AppContext.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'chat.db'}",
                                            chroma_path=str(tmp_path / "chroma")))
    app.migrate()
    org = builders.build_org(app.uow)
    opp = builders.make_deal(app.uow, org)
    with app.uow() as uow:
        request = approvals.request_gate(opp, "ATI", actor=org.actor("rep"), uow=uow)
        uow.commit()
    return app, org, request


def _chat(app, org, answers, script):
    model = ScriptedChatModel(script=script)
    agent = Agent(app, model_factory=lambda today, locale: model)
    replies = iter(answers)
    return ConsoleChat(app, Out(), actor=org.actor("manager"), agent=agent, read=lambda prompt: next(replies),
                       locale="en"), model


def _status(app, request_id):
    with app.engine.connect() as conn:
        return conn.execute(select(t.approval_requests.c.status).where(
            t.approval_requests.c.id == request_id)).scalar_one()


def test_yes_in_place_executes_the_proposal_as_the_user(tmp_path, capsys):
    app, org, request = _setup(tmp_path)
    chat, model = _chat(app, org, ["approve it", "y", "/quit"],
                        [call("decide_approval", approval=request.ref, decision="approve"),
                         say("Press Confirm to approve.")])
    assert chat.run() == 0
    shown = capsys.readouterr().out
    assert "Needs your confirmation" in shown and request.ref in shown
    with app.engine.connect() as conn:
        decisions = conn.execute(select(t.approval_decisions.c.decider_id, t.approval_decisions.c.outcome)).all()
        audit = conn.execute(select(t.audit_log.c.action, t.audit_log.c.via_agent).where(
            t.audit_log.c.entity == "pending_action")).all()
    assert decisions == [(org["manager"], "approve")]
    assert [a for a, _ in audit] == ["proposed", "confirmed"]
    # The model never saw the token: not in any message it was sent.
    token_free = all("token" not in str(m.content) for turn in model.seen for m in turn)
    assert token_free
    app.close()


def test_no_in_place_changes_nothing(tmp_path, capsys):
    app, org, request = _setup(tmp_path)
    chat, _ = _chat(app, org, ["approve it", "n", "/quit"],
                    [call("decide_approval", approval=request.ref, decision="approve"), say("Confirm?")])
    chat.run()
    assert "Cancelled, nothing was changed" in capsys.readouterr().out
    assert _status(app, request.id) == "pending"
    with app.engine.connect() as conn:
        assert conn.execute(select(t.approval_decisions)).first() is None
    app.close()


def test_the_confirmation_lands_in_the_threads_memory(tmp_path):
    app, org, request = _setup(tmp_path)
    chat, model = _chat(app, org, ["approve it", "y", "and now?", "/quit"],
                        [call("decide_approval", approval=request.ref, decision="approve"), say("Confirm?"),
                         say("It is approved.")])
    chat.run()
    last_turn = model.seen[-1]
    assert any("approve" in str(m.content).lower() and m.type == "ai" for m in last_turn[-3:])
    app.close()
