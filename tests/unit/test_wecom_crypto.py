"""The product's WeCom callback crypto (bot/wecom/crypto.py) against the published samples and an
independent reference implementation (tests/bot/wecom_reference.py: pycryptodome, no shared code).

Agreement of the two on WeCom's own sample vectors, on each other's ciphertexts and on byte-identical
output for fixed random bytes means both follow the spec; the rejections check that nothing forged,
tampered or sealed for someone else is ever opened, and that each refusal says why.
"""
from __future__ import annotations

import base64
import hashlib
import struct
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.wecom.crypto import WeComCrypto
from domain.errors import Unauthenticated
from tests.bot.wecom_reference import ReferenceCrypto, card_event_xml, event_xml, text_xml

# The sample published with WeCom's callback documentation.
TOKEN, CORP_ID, AES_KEY = "QDG6eK", "wx5823bf96d3bd56c7", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
URL_CHECK = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
             "nonce": "263014780",
             "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="}
URL_ECHO = "1616140317555161061"
POST = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
        "nonce": "1372623149",
        "encrypt": "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qcz"
                   "cdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8q"
                   "Ljvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4L"
                   "UMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rU"
                   "PA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXd"
                   "Q2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="}
OTHER_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
RANDOM = bytes(range(16))
TS, NONCE = "1700000000", "424242"

CHINESE_XML = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
               "<FromUserName><![CDATA[zhangsan]]></FromUserName><MsgType><![CDATA[text]]></MsgType>"
               "<Content><![CDATA[新建线索 华东电力 预算200万]]></Content><AgentID>1000002</AgentID></xml>")
MESSAGES = {"chinese_xml": CHINESE_XML, "emoji": "报价已批准 ✅🎉👍🏽 👨‍👩‍👧", "empty": "",
            "long": ("回款提醒 payment reminder 逾期 " * 400)[:10_000]}  # 10,000 characters, ~15 kB of UTF-8


@pytest.fixture
def product() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


@pytest.fixture
def ref() -> ReferenceCrypto:
    return ReferenceCrypto(TOKEN, AES_KEY, CORP_ID)


def refusal(call, *args) -> str:
    """The reason of the Unauthenticated that `call(*args)` raises."""
    with pytest.raises(Unauthenticated) as e:
        call(*args)
    return e.value.details["reason"]


def resign(ref: ReferenceCrypto, encrypt: str) -> tuple[str, str, str, str]:
    """(msg_signature, timestamp, nonce, encrypt): what an attacker who knows the token can sign."""
    return ref.sign(TS, NONCE, encrypt), TS, NONCE, encrypt


def tamper(encrypt: str, position: int, mask: int) -> str:
    raw = bytearray(base64.b64decode(encrypt))
    raw[position] ^= mask
    return base64.b64encode(bytes(raw)).decode()


def padded(plain: bytes, pad: int | None = None, value: int | None = None) -> bytes:
    """`plain` padded to 32 bytes, or with `pad` bytes of `value` for crafting bad padding."""
    pad = 32 - len(plain) % 32 if pad is None else pad
    return plain + bytes([pad if value is None else value]) * pad


# -- the published samples ----------------------------------------------------------------------

def test_official_url_check_sample_answers_the_echo_through_the_product(product):
    assert product.verify_url(**URL_CHECK) == URL_ECHO


def test_official_url_check_sample_answers_the_echo_through_the_reference(ref):
    assert ref.sign(URL_CHECK["timestamp"], URL_CHECK["nonce"], URL_CHECK["echostr"]) == URL_CHECK["msg_signature"]
    assert ref.decrypt(URL_CHECK["echostr"]) == (URL_ECHO.encode(), CORP_ID.encode())


def _check_sample_message(xml: bytes) -> None:
    root = ET.fromstring(xml)
    assert root.findtext("FromUserName") == "mycreate"
    assert root.findtext("Content") == "hello"
    assert root.findtext("MsgId") == "4561255354251345929"
    assert root.findtext("AgentID") == "218"


def test_official_post_sample_opens_through_the_product(product):
    _check_sample_message(product.open(**POST))


def test_official_post_sample_opens_through_the_reference(ref):
    assert ref.sign(POST["timestamp"], POST["nonce"], POST["encrypt"]) == POST["msg_signature"]
    msg, receive_id = ref.decrypt(POST["encrypt"])
    assert receive_id == CORP_ID.encode()
    _check_sample_message(msg)


# -- the signature ------------------------------------------------------------------------------

@pytest.mark.parametrize("timestamp, nonce, encrypt", [
    ("1409659813", "1372623149", "zzz-sorts-last"),
    ("9", "0", "AAAA"),  # sorting is by string: "9" after "0" and before the letters
    (URL_CHECK["timestamp"], URL_CHECK["nonce"], URL_CHECK["echostr"]),
])
def test_signature_is_sha1_hex_over_the_sorted_strings(product, ref, timestamp, nonce, encrypt):
    by_hand = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce, encrypt])).encode("utf-8")).hexdigest()
    assert product.signature(timestamp, nonce, encrypt) == ref.sign(timestamp, nonce, encrypt) == by_hand


def test_signature_does_not_depend_on_argument_order(product):
    assert product.signature("b", "a", "c") == product.signature("a", "c", "b") == \
        hashlib.sha1("".join(sorted([TOKEN, "a", "b", "c"])).encode()).hexdigest()


# -- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("message", MESSAGES.values(), ids=MESSAGES.keys())
def test_product_ciphertext_opens_with_the_reference(product, ref, message):
    assert ref.decrypt(product.encrypt(message)) == (message.encode(), CORP_ID.encode())


@pytest.mark.parametrize("message", MESSAGES.values(), ids=MESSAGES.keys())
def test_reference_ciphertext_opens_with_the_product(product, ref, message):
    encrypt = ref.encrypt(message)
    assert product.decrypt(encrypt) == message.encode()
    assert product.open(*resign(ref, encrypt)) == message.encode()


@pytest.mark.parametrize("length", range(0, 71))
def test_every_length_around_the_block_boundaries_round_trips(product, ref, length):
    message = bytes((i * 7 + 1) % 256 for i in range(length))
    assert ref.decrypt(product.encrypt(message)) == (message, CORP_ID.encode())
    assert product.decrypt(ref.encrypt(message)) == message


# 16 random + 4 length + n + 18 corp id bytes: a multiple of 32 when n is 26, 58, 90, ...
@pytest.mark.parametrize("length", [26, 58, 90, 122])
def test_a_plaintext_filling_whole_blocks_gets_a_full_block_of_padding(product, ref, length):
    message = b"x" * length
    encrypt = product.encrypt(message, random=RANDOM)
    raw = ref.decrypt_raw(encrypt)
    assert len(raw) == 16 + 4 + length + len(CORP_ID) + 32
    assert raw.endswith(bytes([32]) * 32)
    assert product.decrypt(ref.encrypt(message)) == message


@pytest.mark.parametrize("length", [0, 1, 11, 12, 13, 25, 27, 57, 59])
def test_padding_is_pkcs7_to_32_byte_blocks(product, ref, length):
    framed = 16 + 4 + length + len(CORP_ID)
    raw = ref.decrypt_raw(product.encrypt(b"y" * length))
    pad = 32 - framed % 32
    assert len(raw) % 32 == 0 and len(raw) == framed + pad
    assert raw[-pad:] == bytes([pad]) * pad


@settings(max_examples=100, deadline=None)
@given(text=st.text())
def test_any_unicode_text_round_trips_both_ways(text):
    product, ref = WeComCrypto(TOKEN, AES_KEY, CORP_ID), ReferenceCrypto(TOKEN, AES_KEY, CORP_ID)
    body = text.encode("utf-8")
    assert ref.decrypt(product.encrypt(body)) == (body, CORP_ID.encode())
    assert product.decrypt(ref.encrypt(body)) == body


@pytest.mark.parametrize("message", [*MESSAGES.values(), b"x" * 26, URL_ECHO],
                         ids=[*MESSAGES.keys(), "whole_blocks", "echo"])
def test_fixed_random_bytes_give_identical_ciphertext_from_both(product, ref, message):
    assert product.encrypt(message, random=RANDOM) == ref.encrypt(message, random=RANDOM)


def test_fresh_random_bytes_make_each_ciphertext_different(product):
    assert product.encrypt("同一条消息") != product.encrypt("同一条消息")


def test_url_check_from_the_reference_answers_the_echo(product, ref):
    params = ref.url_check("8429471923471")
    assert product.verify_url(**params) == "8429471923471"


def test_a_sealed_reply_verifies_with_the_reference(product, ref):
    sealed = product.seal("<xml><Content><![CDATA[已收到]]></Content></xml>", nonce=NONCE, timestamp=TS)
    assert sealed["TimeStamp"] == TS and sealed["Nonce"] == NONCE
    assert sealed["MsgSignature"] == ref.sign(TS, NONCE, sealed["Encrypt"])
    assert ref.decrypt(sealed["Encrypt"]) == ("<xml><Content><![CDATA[已收到]]></Content></xml>".encode(),
                                              CORP_ID.encode())


def test_reference_callbacks_of_each_inbound_shape_open_with_the_product(product, ref):
    shapes = [text_xml("zhangsan", "新建线索 华东电力", 1001, corp_id=CORP_ID, agent_id=1000002, create_time=1),
              event_xml("zhangsan", "enter_agent", corp_id=CORP_ID, agent_id=1000002, create_time=1),
              card_event_xml("zhangsan", task_id="apr-3-x1", event_key="approve:3", response_code="rc-9",
                             corp_id=CORP_ID, agent_id=1000002, create_time=1)]
    for xml in shapes:
        params, body = ref.callback(xml)
        envelope = ET.fromstring(body)
        assert envelope.findtext("ToUserName") == CORP_ID
        assert envelope.findtext("AgentID") == "1000002"
        assert product.open(params["msg_signature"], params["timestamp"], params["nonce"],
                            envelope.findtext("Encrypt")).decode() == xml
    click = ET.fromstring(shapes[2])
    assert [click.findtext(k) for k in ("MsgType", "Event", "EventKey", "TaskId", "CardType", "ResponseCode")] == \
        ["event", "template_card_event", "approve:3", "apr-3-x1", "button_interaction", "rc-9"]


# -- refusals: the signature --------------------------------------------------------------------

def test_a_signature_with_one_hex_digit_changed_is_refused(product):
    sig = POST["msg_signature"]
    for i in (0, 17, len(sig) - 1):
        forged = sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1:]
        assert refusal(product.open, forged, POST["timestamp"], POST["nonce"], POST["encrypt"]) == "signature"


def test_a_signature_over_another_nonce_is_refused(product, ref):
    other = ref.sign(POST["timestamp"], "1372623150", POST["encrypt"])
    assert refusal(product.open, other, POST["timestamp"], POST["nonce"], POST["encrypt"]) == "signature"


def test_an_empty_signature_is_refused(product):
    assert refusal(product.open, "", POST["timestamp"], POST["nonce"], POST["encrypt"]) == "signature"
    assert refusal(product.verify_url, "", URL_CHECK["timestamp"], URL_CHECK["nonce"],
                   URL_CHECK["echostr"]) == "signature"


def test_a_signature_made_with_another_token_is_refused(product):
    stranger = ReferenceCrypto("not-our-token", AES_KEY, CORP_ID)
    encrypt = stranger.encrypt("<xml/>")
    assert refusal(product.open, stranger.sign(TS, NONCE, encrypt), TS, NONCE, encrypt) == "signature"


def test_tampered_ciphertext_under_the_original_signature_is_refused(product):
    tampered = tamper(POST["encrypt"], 40, 0x01)
    assert refusal(product.open, POST["msg_signature"], POST["timestamp"], POST["nonce"], tampered) == "signature"


def test_a_url_check_with_a_bad_signature_is_refused(product):
    forged = {**URL_CHECK, "msg_signature": "0" * 40}
    assert refusal(product.verify_url, *forged.values()) == "signature"


# -- refusals: an attacker who knows the token but not the key ----------------------------------

def test_ciphertext_tampered_in_its_last_block_and_resigned_is_never_opened(product, ref):
    encrypt = ref.encrypt(CHINESE_XML, random=RANDOM)
    size = len(base64.b64decode(encrypt))
    reasons = set()
    for position in range(size - 16, size):  # the last block: its plaintext decrypts to garbage
        for mask in (0x01, 0x80, 0xFF):
            reasons.add(refusal(product.open, *resign(ref, tamper(encrypt, position, mask))))
    assert reasons <= {"padding", "length", "corp_id"}


def test_flipping_the_padding_byte_through_the_previous_block_is_refused(product, ref):
    encrypt = ref.encrypt(b"x" * 26, random=RANDOM)  # whole blocks: the last block is 32 bytes of 0x20
    size = len(base64.b64decode(encrypt))
    # In CBC, flipping a bit of ciphertext block n-1 flips the same bit of plaintext block n: 0x20 → 0x21 = 33.
    assert refusal(product.open, *resign(ref, tamper(encrypt, size - 17, 0x01))) == "padding"
    assert refusal(product.open, *resign(ref, tamper(encrypt, size - 17, 0x20))) == "padding"  # → 0


def test_a_forged_valid_padding_still_fails_on_the_corp_id(product, ref):
    length = 10  # 16 + 4 + 10 + 18 = 48 bytes: 16 of padding, value 0x10
    encrypt = ref.encrypt(b"z" * length, random=RANDOM)
    size = len(base64.b64decode(encrypt))
    # The last plaintext byte 0x10 → 0x01 makes padding of one byte valid, so the corp id gains 15 bytes.
    assert refusal(product.open, *resign(ref, tamper(encrypt, size - 17, 0x10 ^ 0x01))) == "corp_id"


def test_a_message_sealed_for_another_corp_is_refused(product):
    other = ReferenceCrypto(TOKEN, AES_KEY, "wwanothercorp")
    encrypt = other.encrypt(CHINESE_XML)
    assert refusal(product.open, *resign(other, encrypt)) == "corp_id"
    assert refusal(product.decrypt, ReferenceCrypto(TOKEN, AES_KEY, CORP_ID + "x").encrypt("hi")) == "corp_id"
    assert refusal(product.decrypt, ReferenceCrypto(TOKEN, AES_KEY, CORP_ID[:-1]).encrypt("hi")) == "corp_id"


@pytest.mark.parametrize("message", ["hello", CHINESE_XML, "", "1616140317555161061"])
def test_a_message_sealed_with_another_key_is_refused(product, message):
    stranger = ReferenceCrypto(TOKEN, OTHER_KEY, CORP_ID)
    encrypt = stranger.encrypt(message, random=RANDOM)
    assert refusal(product.open, *resign(stranger, encrypt)) in {"padding", "length", "corp_id"}


def test_a_truncated_ciphertext_is_refused(product, ref):
    raw = base64.b64decode(ref.encrypt(CHINESE_XML))
    for cut in (1, 5, 15, 17):
        encrypt = base64.b64encode(raw[:-cut]).decode()
        assert refusal(product.open, *resign(ref, encrypt)) == "ciphertext"


def test_an_empty_ciphertext_is_refused(product, ref):
    assert refusal(product.open, *resign(ref, "")) == "ciphertext"


@pytest.mark.parametrize("encrypt", ["not base64 at all!", "abc", "汉字汉字", "AAAA" * 8 + "*"])
def test_ciphertext_that_is_not_base64_is_refused(product, ref, encrypt):
    assert refusal(product.open, *resign(ref, encrypt)) == "ciphertext"


# -- refusals: plaintexts the reference crafts by hand ------------------------------------------

def test_a_length_field_past_the_end_of_the_message_is_refused(product, ref):
    body = b"<xml>hi</xml>"
    plain = RANDOM + struct.pack("!I", len(body) + len(CORP_ID) + 1) + body + CORP_ID.encode()
    assert refusal(product.decrypt, ref.encrypt_raw(padded(plain))) == "length"
    huge = RANDOM + struct.pack("!I", 0xFFFFFFFF) + body + CORP_ID.encode()
    assert refusal(product.decrypt, ref.encrypt_raw(padded(huge))) == "length"


def test_a_plaintext_too_short_for_its_header_is_refused(product, ref):
    assert refusal(product.decrypt, ref.encrypt_raw(padded(RANDOM + b"\x00\x00"))) == "length"


def test_a_shorter_length_field_leaves_bytes_before_the_corp_id_and_is_refused(product, ref):
    body = b"<xml>hi</xml>"
    plain = RANDOM + struct.pack("!I", len(body) - 1) + body + CORP_ID.encode()
    assert refusal(product.decrypt, ref.encrypt_raw(padded(plain))) == "corp_id"


@pytest.mark.parametrize("value", [0, 33, 255])
def test_a_padding_value_outside_1_to_32_is_refused(product, ref, value):
    plain = RANDOM + struct.pack("!I", 2) + b"hi" + CORP_ID.encode()  # 40 bytes
    crafted = padded(plain, pad=24, value=value)  # 64 bytes whose last byte is `value`
    assert refusal(product.decrypt, ref.encrypt_raw(crafted)) == "padding"
    with pytest.raises(ValueError):
        ref.decrypt(ref.encrypt_raw(crafted))


def test_inconsistent_padding_bytes_are_refused(product, ref):
    plain = RANDOM + struct.pack("!I", 2) + b"hi" + CORP_ID.encode()
    crafted = bytearray(padded(plain))  # 24 bytes of 0x18
    crafted[-5] = 0x17
    assert refusal(product.decrypt, ref.encrypt_raw(bytes(crafted))) == "padding"


# -- the key ------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [AES_KEY[:42], AES_KEY + "A", "", AES_KEY[:42] + "!", AES_KEY[:42] + "-",
                                 "汉" * 43, AES_KEY[:20] + " " + AES_KEY[21:]])
def test_a_key_that_is_not_43_base64_characters_is_refused(key):
    with pytest.raises(ValueError):
        WeComCrypto(TOKEN, key, CORP_ID)


def test_a_missing_token_or_corp_id_is_refused():
    with pytest.raises(ValueError):
        WeComCrypto("", AES_KEY, CORP_ID)
    with pytest.raises(ValueError):
        WeComCrypto(TOKEN, AES_KEY, "")


def test_the_key_is_the_base64_of_the_encoding_key_and_the_iv_its_first_half(product):
    assert product.key == base64.b64decode(AES_KEY + "=") and len(product.key) == 32
    assert product.iv == product.key[:16]


# -- found in review: a short-decoding key, non-ASCII and missing signature parts ----------------

def test_a_43_character_key_with_base64_padding_is_refused_at_construction():
    with pytest.raises(ValueError):
        WeComCrypto(TOKEN, AES_KEY[:42] + "=", CORP_ID)


def test_a_non_ascii_signature_is_refused_as_a_bad_signature(product):
    assert refusal(product.open, "é" * 40, POST["timestamp"], POST["nonce"], POST["encrypt"]) == "signature"


@pytest.mark.parametrize("missing", ["msg_signature", "timestamp", "nonce"])
def test_a_missing_query_parameter_is_refused_as_a_bad_signature(product, missing):
    args = {"msg_signature": POST["msg_signature"], "timestamp": POST["timestamp"], "nonce": POST["nonce"]}
    args[missing] = None
    assert refusal(product.open, args["msg_signature"], args["timestamp"], args["nonce"], POST["encrypt"]) \
        == "signature"
