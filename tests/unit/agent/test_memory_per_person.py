"""Conversation memory is per chat thread and person: in a shared thread nobody reads another's turns."""
from __future__ import annotations

from bot.agent.runtime import Agent
from bot.context import AppContext
from domain.settings import Settings
from tests import builders
from tests.scripted_model import ScriptedChatModel, say


def test_two_people_in_one_thread_do_not_share_memory(tmp_path):
    app = AppContext.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}",
                                            chroma_path=str(tmp_path / "chroma")))
    app.migrate()
    org = builders.build_org(app.uow)
    model = ScriptedChatModel(script=[say("noted"), say("hello"), say("again")])
    agent = Agent(app, model_factory=lambda today, locale: model)

    agent.reply(actor=org.actor("rep"), text="my secret pricing note", thread_id="slack:C1:1700.1")
    agent.reply(actor=org.actor("rep2"), text="what did they say?", thread_id="slack:C1:1700.1")
    agent.reply(actor=org.actor("rep"), text="and now?", thread_id="slack:C1:1700.1")

    seen_by_rep2 = " ".join(str(m.content) for m in model.seen[1])
    assert "secret pricing" not in seen_by_rep2
    seen_by_rep_later = " ".join(str(m.content) for m in model.seen[2])
    assert "secret pricing" in seen_by_rep_later and "what did they say" not in seen_by_rep_later
    app.close()
