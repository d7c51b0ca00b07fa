"""Charts in Slack: after the text reply, the PNG is uploaded with files_upload_v2 into the same thread.

The mock takes the upload the way slack_sdk sends it (upload URL, bytes POSTed there, completion
with the file id and title in the channel and thread); the bytes are opened as a picture.
"""
from __future__ import annotations

import io
import logging
import time

from PIL import Image

from bot import charts as drawing
from tests import builders
from tests.bot.chart_probe import ANSWER, ASK, chart_turns

CHANNEL, TS = "C0DEALS", "1700000100.000100"


def _ask(rig, event_id: str, ts: str = TS):
    event = {"type": "app_mention", "user": "U0REP", "text": f"<@U0BOT> {ASK}", "ts": ts, "channel": CHANNEL,
             "event_ts": ts}
    assert rig.post_event(event, event_id=event_id).status_code == 200


def _methods(rig) -> list[str]:
    with rig.slack._lock:
        return [c.method for c in rig.slack.calls]


def _wait_for_log(caplog, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, f"no log line with {text!r}"
        time.sleep(0.02)


def test_a_chart_answer_uploads_the_png_into_the_reply_thread_after_the_text(rig):
    for n, amount in ((1, "1234567.89"), (2, "880000")):
        builders.make_deal(rig.app.uow, rig.org, n=n, amount=amount)
    with chart_turns(rig.services.agent) as model:
        _ask(rig, "EvChart")
        rig.slack.wait_for("files.completeUploadExternal")
    [reply] = rig.slack.of("chat.postMessage")
    assert reply.args["text"] == ANSWER and reply.args["thread_ts"] == TS
    methods = _methods(rig)
    assert methods.index("chat.postMessage") < methods.index("files.getUploadURLExternal")
    [shared] = rig.slack.shared_files()
    assert (shared["channel"], shared["thread_ts"]) == (CHANNEL, TS)
    assert shared["filename"] == "pipeline_by_stage.png" and shared["title"].startswith("Pipeline by stage")
    assert "Qualify (2)" in shared["alt_txt"] and "2.11M" in shared["alt_txt"]  # 1,234,567.89 + 880,000
    image = Image.open(io.BytesIO(shared["data"]))
    assert image.format == "PNG" and image.size == (drawing.WIDTH, drawing.HEIGHT)
    assert len(model.script) == 0


def test_a_failed_upload_leaves_the_text_reply_and_posts_nothing_more(rig, caplog):
    builders.make_deal(rig.app.uow, rig.org, n=1)
    rig.slack.fail_next("files.completeUploadExternal", "not_in_channel")
    with caplog.at_level(logging.ERROR, logger="ltc.charts"), chart_turns(rig.services.agent, turns=2):
        _ask(rig, "EvChartFail")
        rig.slack.wait_for("files.completeUploadExternal")
        _wait_for_log(caplog, "could not be sent to slack")
        rig.slack.fail_uploads(1)  # the bytes' POST answers 500 (slack_sdk raises before completing)
        _ask(rig, "EvChartFail2", ts="1700000200.000100")
        rig.slack.wait_for("files.getUploadURLExternal", 2)
        deadline = time.monotonic() + 10
        while sum("could not be sent" in r.getMessage() for r in caplog.records) < 2:
            assert time.monotonic() < deadline, "the failed byte upload was not logged"
            time.sleep(0.02)
    replies = rig.slack.of("chat.postMessage")
    assert [r.args["text"] for r in replies] == [ANSWER, ANSWER]  # each text reply, and nothing about charts
    assert rig.slack.shared_files() == []
    assert len(rig.slack.of("files.completeUploadExternal")) == 1  # the second never got that far
