"""Charts into Slack: each PNG uploaded with files_upload_v2 into the thread the reply went to.

files_upload_v2 asks for an upload URL (files.getUploadURLExternal), POSTs the bytes there and
shares the file (files.completeUploadExternal) in the channel and thread. It runs after the text
reply, in the lazy listener: a failure is logged and the thread gets nothing more.
"""
from __future__ import annotations

from slack_sdk import WebClient

from bot import charts as drawing
from tools.charts import Chart


def post_chart(client: WebClient, channel: str, thread_ts: str | None, chart: Chart,
               png: bytes | None = None) -> None:
    """Upload `chart` (drawn unless `png` is given) into `channel`, in `thread_ts`'s thread."""
    client.files_upload_v2(channel=channel, thread_ts=thread_ts, content=png or drawing.render_png(chart),
                           filename=drawing.filename(chart), title=chart.title, alt_txt=drawing.alt_text(chart))


def post_charts(client: WebClient, channel: str, thread_ts: str | None, charts: list[Chart]) -> int:
    """Every chart of a reply; a chart that cannot be drawn or uploaded is logged and skipped."""
    return drawing.deliver(charts, lambda chart, png: post_chart(client, channel, thread_ts, chart, png),
                           where=f"slack:{channel}")
