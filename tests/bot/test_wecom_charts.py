"""Charts in WeCom: after the text reply, the PNG goes up as temporary media (media/upload, type
image, multipart field `media`) and is sent to the same person as an image message by its media_id.
"""
from __future__ import annotations

import io
import logging

import pytest
from PIL import Image

from bot import charts as drawing
from bot.wecom.api import WeComApiError, WeComClient
from tests import builders
from tests.bot.chart_probe import ANSWER, ASK, chart_turns
from tests.bot.wecom_mock import IMAGE_BYTES, WeComMock
from tests.bot.wecom_rig import AGENT, CORP, SECRET

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)


def _order(rig, userid: str) -> list[str]:
    return [m["msgtype"] for m in rig.mock.sent(userid)]


def test_a_chart_answer_sends_the_png_as_an_image_after_the_text(wecom):
    builders.make_deal(wecom.app.uow, wecom.org, n=1, amount="1234567.89")
    with chart_turns(wecom.services.agent):
        wecom.say("LiNa", ASK)
    assert wecom.texts("LiNa") == [ANSWER]
    assert _order(wecom, "LiNa") == ["text", "image"]
    [image_message] = wecom.mock.sent("LiNa", "image")
    assert image_message["agentid"] == AGENT
    [upload] = wecom.mock.of("media/upload")
    assert upload.params["type"] == "image" and upload.errcode == 0
    media = wecom.mock.media[image_message["image"]["media_id"]]
    assert media["filename"] == "pipeline_by_stage.png" and media["content_type"] == "image/png"
    picture = Image.open(io.BytesIO(media["data"]))
    assert picture.format == "PNG" and picture.size == (drawing.WIDTH, drawing.HEIGHT)


def test_a_refused_upload_leaves_the_text_reply_and_sends_nothing_more(wecom, caplog):
    wecom.mock.fail_next("media/upload", 40006, "invalid file size")
    with caplog.at_level(logging.ERROR, logger="ltc.charts"), chart_turns(wecom.services.agent):
        wecom.say("LiNa", ASK)
    assert wecom.texts("LiNa") == [ANSWER]
    assert _order(wecom, "LiNa") == ["text"]
    assert any("could not be sent to wecom:LiNa" in r.getMessage() for r in caplog.records)


def test_an_expired_token_on_upload_is_renewed_and_the_image_still_goes(wecom):
    with chart_turns(wecom.services.agent):
        wecom.mock.fail_next("media/upload", 42001, "access_token expired")
        wecom.say("LiNa", ASK)
    assert _order(wecom, "LiNa") == ["text", "image"]
    assert [c.errcode for c in wecom.mock.of("media/upload")] == [42001, 0]


# -- the client against the mock's media rules ------------------------------------------------------

@pytest.fixture
def client():
    with WeComMock(corp_id=CORP, secret=SECRET, agent_id=AGENT) as mock:
        c = WeComClient(CORP, SECRET, AGENT, base_url=mock.base_url, retry_pause=0.01)
        c.mock = mock
        yield c
        c.close()


def test_an_uploaded_image_keeps_its_bytes_and_its_media_id_sends(client):
    media_id = client.upload_image(PNG, "chart.png")
    assert client.mock.media[media_id]["data"] == PNG
    client.send_image("LiNa", media_id)
    assert client.mock.sent("LiNa", "image")[0]["image"] == {"media_id": media_id}


def test_an_image_over_two_megabytes_or_not_png_or_jpg_is_refused_for_good(client):
    with pytest.raises(WeComApiError) as big:
        client.upload_image(PNG + bytes(IMAGE_BYTES), "chart.png")
    with pytest.raises(WeComApiError) as gif:
        client.upload_image(b"GIF89a" + bytes(100), "chart.gif")
    assert (big.value.errcode, gif.value.errcode) == (40006, 40005)
    assert not big.value.transient and not gif.value.transient


def test_a_busy_upload_is_tried_once_more_and_an_unknown_media_id_is_refused(client):
    client.mock.fail_next("media/upload", 45009, "busy")
    assert client.upload_image(PNG, "chart.png").startswith("media-")
    with pytest.raises(WeComApiError) as unknown:
        client.send_image("LiNa", "media-nope")
    assert unknown.value.errcode == 40007
