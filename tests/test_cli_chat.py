"""`ltc chat`: the README's main job ends here; it migrates a new database and chats until EOF."""
from __future__ import annotations

import io

import pytest

from bot.cli import main
from bot.context import AppContext
from domain.settings import Settings
from tests import builders


@pytest.fixture
def no_index(monkeypatch):
    def refuse(self, **_):  # building the playbook index takes half a minute; its absence is handled
        raise RuntimeError("not in this test")

    monkeypatch.setattr(AppContext, "build_index", refuse)


def test_chat_answers_until_end_of_input_and_says_what_is_missing(tmp_path, capsys, monkeypatch, no_index):
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    monkeypatch.setenv("LTC_CHROMA_PATH", str(tmp_path / "chroma"))
    app = AppContext.from_settings(Settings(database_url=url))
    app.migrate()
    builders.build_org(app.uow)
    app.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("my deals\n我的商机\n"))
    code = main(["--db", url, "chat", "--as", "rep@example.com"])
    out = capsys.readouterr().out
    assert code == 0
    assert "index not built" in out and "LTC Copilot" in out
    assert out.count("> ") >= 2


def test_chat_as_an_unknown_email_is_refused(tmp_path, capsys, no_index):
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    app = AppContext.from_settings(Settings(database_url=url))
    app.migrate()
    builders.build_org(app.uow)
    app.close()
    assert main(["--db", url, "chat", "--as", "nobody@example.com"]) == 2
    assert "nobody@example.com" in capsys.readouterr().err
