"""An independent WeCom (企业微信) callback crypto for the test side, written from the published spec.

It shares no code with `bot/wecom/crypto.py` and no primitive library either (pycryptodome here,
`cryptography` there), so a test where the two agree is evidence that both follow the spec:

- msg_signature = sha1 hex of "".join(sorted([token, timestamp, nonce, encrypt]));
- AESKey = base64decode(EncodingAESKey + "="), IV = AESKey[:16], AES-256-CBC;
- plaintext = 16 random bytes + 4-byte big-endian msg length + msg + receiveid, PKCS#7 to 32 bytes.

Beside the cipher it builds what WeCom sends: signed callback query strings and POST bodies, the
GET URL check, and inbound message XML (text, events, template card clicks) in WeCom's shape.

    ref = ReferenceCrypto(TOKEN, AES_KEY, CORP_ID)
    params, body = ref.callback(text_xml("zhangsan", "新建线索", 1, corp_id=CORP_ID, agent_id=1000002))
    http.post("/wecom/callback", params=params, content=body)
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import struct
import time
from xml.sax.saxutils import escape

from Crypto.Cipher import AES

BLOCK = 32  # the spec's PKCS#7 block, not AES's 16


class ReferenceCrypto:
    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        self.token = token
        self.corp_id = corp_id
        self.key = base64.b64decode(encoding_aes_key + "=")
        if len(self.key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self.iv = self.key[:16]

    # -- the cipher -----------------------------------------------------------------------------

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return hashlib.sha1("".join(sorted([self.token, timestamp, nonce, encrypt])).encode()).hexdigest()

    def frame(self, msg: bytes | str, random: bytes | None = None, receive_id: bytes | str | None = None) -> bytes:
        """The unpadded plaintext: random + length + msg + receive id."""
        body = msg.encode("utf-8") if isinstance(msg, str) else msg
        rid = self.corp_id if receive_id is None else receive_id
        rid = rid.encode("utf-8") if isinstance(rid, str) else rid
        random = os.urandom(16) if random is None else random
        return random + struct.pack("!I", len(body)) + body + rid

    def encrypt(self, msg: bytes | str, random: bytes | None = None) -> str:
        plain = self.frame(msg, random)
        pad = BLOCK - len(plain) % BLOCK
        return self.encrypt_raw(plain + bytes([pad] * pad))

    def encrypt_raw(self, plain: bytes) -> str:
        """Encrypt an already framed and padded plaintext (a multiple of 16): for crafting bad ones."""
        return base64.b64encode(AES.new(self.key, AES.MODE_CBC, iv=self.iv).encrypt(plain)).decode()

    def decrypt_raw(self, encrypt: str) -> bytes:
        return AES.new(self.key, AES.MODE_CBC, iv=self.iv).decrypt(base64.b64decode(encrypt))

    def decrypt(self, encrypt: str) -> tuple[bytes, bytes]:
        """(msg, receive id); ValueError on bad padding or a length past the end."""
        plain = self.decrypt_raw(encrypt)
        pad = plain[-1] if plain else 0
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad] * pad):
            raise ValueError("bad PKCS#7 padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise ValueError("plaintext too short")
        (length,) = struct.unpack("!I", content[:4])
        if 4 + length > len(content):
            raise ValueError("message length runs past the plaintext")
        return content[4:4 + length], content[4 + length:]

    # -- what WeCom sends -----------------------------------------------------------------------

    def callback(self, plain_xml: str, *, timestamp: str | None = None, nonce: str | None = None,
                 agent_id: int | str | None = None) -> tuple[dict[str, str], str]:
        """(query params, POST body) of a callback carrying `plain_xml`, signed as WeCom signs it.

        The envelope's AgentID is the message's own unless `agent_id` says otherwise."""
        if agent_id is None:
            found = re.search(r"<AgentID>(?:<!\[CDATA\[)?(\w*)", plain_xml)
            agent_id = found.group(1) if found else ""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        encrypt = self.encrypt(plain_xml)
        body = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
                f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>")
        return {"msg_signature": self.sign(timestamp, nonce, encrypt), "timestamp": timestamp, "nonce": nonce}, body

    def url_check(self, echo: str, *, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
        """Query params of the GET URL verification; the server must answer `echo` in plain text."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        echostr = self.encrypt(echo)
        return {"msg_signature": self.sign(timestamp, nonce, echostr), "timestamp": timestamp, "nonce": nonce,
                "echostr": echostr}


# -- inbound message XML ------------------------------------------------------------------------

def _cdata(value: object) -> str:
    # "]]>" cannot sit inside one CDATA section: split it across two, as XML writers do.
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml(fields: list[tuple[str, object, bool]]) -> str:
    """<xml> with one element per (name, value, as_cdata); numbers go bare, strings in CDATA."""
    parts = [f"<{name}>{_cdata(value) if cdata else escape(str(value))}</{name}>" for name, value, cdata in fields]
    return "<xml>" + "".join(parts) + "</xml>"


def _now(create_time: int | None) -> int:
    return int(time.time()) if create_time is None else create_time


def text_xml(from_user: str, content: str, msg_id: int | str, *, corp_id: str, agent_id: int | str,
             create_time: int | None = None) -> str:
    return _xml([("ToUserName", corp_id, True), ("FromUserName", from_user, True),
                 ("CreateTime", _now(create_time), False), ("MsgType", "text", True),
                 ("Content", content, True), ("MsgId", msg_id, False), ("AgentID", agent_id, False)])


def event_xml(from_user: str, event: str, *, corp_id: str, agent_id: int | str, event_key: str = "",
              create_time: int | None = None) -> str:
    return _xml([("ToUserName", corp_id, True), ("FromUserName", from_user, True),
                 ("CreateTime", _now(create_time), False), ("MsgType", "event", True),
                 ("Event", event, True), ("EventKey", event_key, True), ("AgentID", agent_id, False)])


def card_event_xml(from_user: str, *, task_id: str, event_key: str, response_code: str, corp_id: str,
                   agent_id: int | str, card_type: str = "button_interaction",
                   create_time: int | None = None) -> str:
    """A click on a template card button (Event template_card_event)."""
    return _xml([("ToUserName", corp_id, True), ("FromUserName", from_user, True),
                 ("CreateTime", _now(create_time), False), ("MsgType", "event", True),
                 ("Event", "template_card_event", True), ("EventKey", event_key, True),
                 ("TaskId", task_id, True), ("CardType", card_type, True),
                 ("ResponseCode", response_code, True), ("AgentID", agent_id, False)])
