"""Sending to one WeCom user: replies flattened and split to WeCom's limits, notices, cards, pictures.

`rich` texts (tables, notices) go as markdown when `wecom_markdown` is on, else everything is text.
"""
from __future__ import annotations

from bot.wecom import format as fmt
from bot.wecom.api import WeComClient


class Messenger:
    def __init__(self, client: WeComClient, *, markdown: bool = True) -> None:
        self.client = client
        self.markdown = markdown

    def text(self, userid: str, text: str, *, rich: bool = False) -> int:
        """Send `text` (a reply, a notice); returns how many messages it took."""
        as_markdown = self.markdown and (rich or fmt.has_table(text))
        body = fmt.flatten_tables(text, markdown=as_markdown)
        parts = fmt.chunks(body)
        for part in parts:
            if as_markdown:
                self.client.send_markdown(userid, part)
            else:
                self.client.send_text(userid, part)
        return len(parts)

    def notice(self, userid: str, title: str, lines) -> int:
        head = f"**{title}**" if self.markdown else title
        return self.text(userid, "\n".join([head, *lines]), rich=True)

    def card(self, userid: str, card: dict) -> dict:
        return self.client.send_card(userid, card)

    def image(self, userid: str, png: bytes, filename: str) -> dict:
        """A picture (a chart): uploaded as temporary media, then sent by its media_id."""
        return self.client.send_image(userid, self.client.upload_image(png, filename))
