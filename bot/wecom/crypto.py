"""WeCom callback crypto (企业微信 回调加解密), per the published callback spec.

- Signature: SHA1 over the sorted strings token, timestamp, nonce and the Encrypt field, hex.
- Key: base64 of EncodingAESKey (43 characters) plus "=": 32 bytes; the IV is its first 16 bytes.
- AES-256-CBC; PKCS#7 padding to 32-byte blocks (not AES's 16: the spec's choice).
- Plaintext: 16 random bytes + 4-byte network-order length + message + receive id (the corp id),
  which must equal ours: a message sealed for another corp is refused.

Every failure is `Unauthenticated` with a `reason` in `details` (signature, ciphertext, padding,
length, corp_id), so the endpoint answers 403 and logs why, and never says more to the caller.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from domain.errors import Unauthenticated

BLOCK = 32  # the spec pads to 32 bytes
RANDOM = 16
KEY_CHARS = 43


def _refuse(reason: str, message: str) -> Unauthenticated:
    return Unauthenticated(message, details={"reason": reason})


class WeComCrypto:
    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        if not token or not corp_id:
            raise ValueError("WeCom callback crypto needs the token and the corp id")
        if len(encoding_aes_key or "") != KEY_CHARS:
            raise ValueError(f"EncodingAESKey must be {KEY_CHARS} characters (it is {len(encoding_aes_key or '')})")
        try:
            self.key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error as e:
            raise ValueError(f"EncodingAESKey is not base64: {e}") from None
        if len(self.key) != 32:  # e.g. a key ending in "=": 43 characters, but not 32 bytes
            raise ValueError("EncodingAESKey does not decode to a 32-byte AES key")
        self.token = token
        self.corp_id = corp_id
        self.iv = self.key[:16]

    # -- signature ------------------------------------------------------------------------------

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return hashlib.sha1("".join(sorted([self.token, timestamp, nonce, encrypt])).encode()).hexdigest()

    def check_signature(self, msg_signature: str | None, timestamp: str | None, nonce: str | None,
                        encrypt: str | None) -> None:
        if not (msg_signature and timestamp and nonce):
            raise _refuse("signature", "msg_signature, timestamp and nonce are all required")
        expected = self.signature(timestamp, nonce, encrypt or "").encode()
        # bytes: compare_digest refuses non-ASCII str, and a caller's junk must be a refusal, not a crash
        if not hmac.compare_digest(expected, msg_signature.lower().encode("utf-8", "replace")):
            raise _refuse("signature", "msg_signature does not match")

    # -- callbacks ------------------------------------------------------------------------------

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET URL verification: check, decrypt and return the plaintext to echo."""
        self.check_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr).decode("utf-8")

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> bytes:
        """A POSTed message's Encrypt field → the plaintext XML, once signature and corp id hold."""
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def seal(self, message: bytes | str, nonce: str, timestamp: str | None = None) -> dict[str, str]:
        """A passive reply: Encrypt, MsgSignature, TimeStamp and Nonce of the answer's XML."""
        timestamp = timestamp or str(int(time.time()))
        encrypt = self.encrypt(message)
        return {"Encrypt": encrypt, "MsgSignature": self.signature(timestamp, nonce, encrypt),
                "TimeStamp": timestamp, "Nonce": nonce}

    # -- AES ------------------------------------------------------------------------------------

    def encrypt(self, message: bytes | str, *, random: bytes | None = None) -> str:
        body = message.encode("utf-8") if isinstance(message, str) else message
        random = os.urandom(RANDOM) if random is None else random
        plain = random + struct.pack(">I", len(body)) + body + self.corp_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        enc = Cipher(algorithms.AES(self.key), modes.CBC(self.iv)).encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def decrypt(self, encrypt: str) -> bytes:
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise _refuse("ciphertext", "Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise _refuse("ciphertext", "Encrypt is not a whole number of AES blocks")
        dec = Cipher(algorithms.AES(self.key), modes.CBC(self.iv)).decryptor()
        plain = dec.update(data) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise _refuse("padding", "bad padding: not sealed with our key")
        plain = plain[:-pad]
        if len(plain) < RANDOM + 4:
            raise _refuse("length", "the plaintext is too short")
        (length,) = struct.unpack(">I", plain[RANDOM:RANDOM + 4])
        body_end = RANDOM + 4 + length
        if body_end > len(plain):
            raise _refuse("length", "the message length runs past the plaintext")
        receive_id = plain[body_end:]
        if not hmac.compare_digest(receive_id, self.corp_id.encode()):
            raise _refuse("corp_id", "the message was sealed for another corp id")
        return plain[RANDOM + 4:body_end]
