"""Slack set-up: settings, the Socket Mode command without its token, Block Kit shapes."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.cli import main
from bot.slack import blocks
from domain.settings import Settings
from tools.format import table


def test_slack_settings_come_from_the_usual_environment_names(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    s = Settings(_env_file=None)
    assert (s.slack_bot_token, s.slack_signing_secret, s.slack_app_token) == ("xoxb-1", "s3cret", "xapp-1")


def test_prod_refuses_a_bot_token_without_a_signing_secret(monkeypatch):
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    with pytest.raises(ValidationError, match="SLACK_SIGNING_SECRET"):
        Settings(_env_file=None, env="prod", database_url="postgresql+psycopg://u@h/db", slack_bot_token="xoxb-1")


def test_socket_mode_without_an_app_token_says_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.delenv("LTC_SLACK_APP_TOKEN", raising=False)
    assert main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "slack"]) != 0
    assert "SLACK_APP_TOKEN" in capsys.readouterr().err


def test_a_reply_with_a_table_is_sent_monospace_and_plain_text_as_mrkdwn():
    listing = "My leads\n" + table(["Lead", "Company"], [["LEAD-00001", "华东电力"], ["LEAD-00002", "Acme"]])
    assert blocks.text_section(listing)["text"]["text"].startswith("```")
    assert blocks.text_section("Lead LEAD-00001 created.")["text"] == {"type": "mrkdwn",
                                                                        "text": "Lead LEAD-00001 created."}


def test_the_onboarding_text_speaks_chinese_and_english():
    text = blocks.onboarding_text("x@y.example")
    assert "x@y.example" in text and "管理员" in text and "admin" in text
